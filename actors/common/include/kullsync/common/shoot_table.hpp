#pragma once

/// A user's active shoots and the rule for when one leaves: a completed or
/// failed shoot stays `linger` after its last message (the UI shows how it
/// ended), unless a newer message about it came meanwhile. The client's
/// coordinator and the server's hub keep one each, so a device and the
/// server remember the same shoots. No CAF: the owner schedules the expiry
/// it is handed and gives it back when due.

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "kullsync/messages/types.hpp"

namespace kullsync {

class shoot_table {
public:
  using map_type = std::map<std::string, msg::shoot_progress>;

  /// Stores the shoot's newest state. For a completed or failed shoot,
  /// returns the version to hand back to expire() once the linger is over.
  std::optional<uint64_t> put(const msg::shoot_progress& p);

  /// Removes the shoot if `version` is still its latest (nothing about it
  /// came since); true if it did.
  bool expire(const std::string& shoot_id, uint64_t version);

  void erase(const std::string& shoot_id);
  void clear();

  const map_type& shoots() const { return shoots_; }
  bool empty() const { return shoots_.empty(); }
  size_t size() const { return shoots_.size(); }

private:
  map_type shoots_;
  std::map<std::string, uint64_t> versions_; // of each shoot's last message
  uint64_t next_version_ = 0;
};

} // namespace kullsync
