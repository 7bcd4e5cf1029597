#pragma once

/// Tokens an operator revoked: per user, every token issued before a time
/// (`iat`) is refused with 4002, at connect and at REFRESH, on every node.
/// A revocation lasts as long as the longest token lifetime the server
/// accepts (`--max-token-lifetime`), after which no token it covers can
/// still be valid. One list per node, shared by its sessions (any thread);
/// in a cluster the broker keeps every node's list the same.

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace kullsync::server {

struct revocation {
  std::string user;
  int64_t before_ms = 0; // tokens issued before this are refused
  int64_t until_ms = 0;  // when the revocation lapses
};

class revocation_list {
public:
  /// Adds (or extends) a revocation: the later `before` and `until` win.
  void add(const revocation& r);

  /// Whether a token of `user` issued at `issued_at_ms` is revoked at
  /// `now_ms` (a token without `iat` is, once a revocation exists).
  bool revoked(const std::string& user, std::optional<int64_t> issued_at_ms,
               int64_t now_ms) const;

  /// The revocations in force at `now_ms` (lapsed ones are forgotten).
  std::vector<revocation> in_force(int64_t now_ms);

private:
  mutable std::mutex mtx_;
  std::map<std::string, revocation> by_user_;
};

} // namespace kullsync::server
