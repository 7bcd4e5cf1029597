#pragma once

/// Tokens an operator revoked: per user, every token issued before a time
/// (`iat`) is refused with 4002, at connect and at REFRESH, on every node.
/// A revocation lasts as long as the longest token lifetime the server
/// accepts (`--max-token-lifetime`), after which no token it covers can
/// still be valid. One list per node, shared by its sessions (any thread);
/// in a cluster the broker keeps every node's list the same, and a node
/// alone may keep its list in a file across restarts.

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kullsync::server {

struct revocation {
  std::string user;
  int64_t before_ms = 0; // tokens issued before this are refused
  int64_t until_ms = 0;  // when the revocation lapses
};

/// "<before> <until> <user>": a revocation as nodes announce it to each
/// other, and a line of the file a node alone keeps.
std::string to_text(const revocation& r);
/// The revocation `text` names (as to_text writes it); nothing if malformed.
std::optional<revocation> revocation_from_text(std::string_view text);

class revocation_list {
public:
  /// Adds (or extends) a revocation: the later `before` and `until` win.
  /// True if that changed the list (then the observer is told, and the
  /// file rewritten).
  bool add(const revocation& r);

  /// Whether a token of `user` issued at `issued_at_ms` is revoked at
  /// `now_ms` (a token without `iat` is, once a revocation exists). `iat`
  /// has whole seconds: a token issued in the second `before` falls in is
  /// not revoked (the user's fresh login right after a revocation must
  /// work), one issued in any second before it is.
  bool revoked(const std::string& user, std::optional<int64_t> issued_at_ms,
               int64_t now_ms) const;

  /// The revocations in force at `now_ms` (lapsed ones are forgotten).
  std::vector<revocation> in_force(int64_t now_ms);

  /// `f` is called (outside the list's lock, on the thread that added)
  /// with each user whose revocation changed: a server closes what is now
  /// revoked.
  void observe(std::function<void(const std::string& user)> f);

  /// Keeps the list in `path` (a to_text line each): loads what is
  /// in force at `now_ms` and rewrites the file on every change. Fails with
  /// the reason when the file cannot be read or written.
  std::optional<std::string> keep_in(const std::string& path, int64_t now_ms);

private:
  using table = std::map<std::string, revocation>;
  /// Adds `r` to the list, the later `before` and `until` winning; true if
  /// that changed it. Under `mtx_`.
  bool merge_locked(const revocation& r);
  /// Writes `t` (the list as of `version`) unless a later one was written.
  std::optional<std::string> save(const table& t, uint64_t version);

  mutable std::mutex mtx_; // the list: every connect and REFRESH reads it
  table by_user_;
  uint64_t version_ = 0;
  std::mutex file_mtx_; // the file, written outside the list's lock
  uint64_t saved_version_ = 0;
  std::vector<std::function<void(const std::string&)>> observers_;
  std::string path_;
};

} // namespace kullsync::server
