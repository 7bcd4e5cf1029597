#include "user_registry.hpp"

#include <algorithm>

namespace kullsync::server {

bool device_here(const user_entry& u, const std::string& device,
                 const device_socket* except) {
  for (auto& s : u.sockets)
    if (&s != except && s.device_id == device)
      return true;
  return false;
}

position_verdict take_position(device_socket& s, uint64_t seq) {
  if (s.start || s.closing)
    return position_verdict::skip;
  if (seq <= s.position)
    return position_verdict::twice;
  if (seq != s.position + 1)
    return position_verdict::gap;
  s.position = seq;
  return position_verdict::send;
}

bool device_present(const user_entry& u, const std::string& device,
                    const device_socket* except) {
  if (device_here(u, device, except))
    return true;
  for (auto& [where, at] : u.remote_devices)
    if (where.second == device)
      return true;
  return false;
}

std::vector<msg::device_connection> devices_of(const user_entry& u) {
  std::vector<msg::device_connection> out;
  auto add = [&](const std::string& device, int64_t at) {
    if (std::none_of(out.begin(), out.end(),
                     [&](auto& d) { return d.device_id == device; })) {
      msg::device_connection d;
      d.device_id = device;
      d.timestamp = at;
      out.push_back(std::move(d));
    }
  };
  for (auto& s : u.sockets)
    add(s.device_id, s.connected_at);
  for (auto& [where, at] : u.remote_devices)
    add(where.second, at);
  return out;
}

std::vector<std::pair<std::string, bool>> presence_changes(const user_entry& u) {
  device_set here;
  for (auto& s : u.sockets)
    if (!s.closing)
      here.insert(s.device_id);
  std::vector<std::pair<std::string, bool>> ops;
  for (auto& d : here)
    if (!u.presence.announced.count(d))
      ops.emplace_back(d, true);
  for (auto& d : u.presence.announced)
    if (!here.count(d))
      ops.emplace_back(d, false);
  return ops;
}

bool track_remote(user_entry& u, const std::string& node, const std::string& device,
                  bool on, int64_t at) {
  auto key = std::make_pair(node, device);
  if (on) {
    auto known = device_present(u, device, nullptr);
    u.remote_devices[key] = at;
    return !known;
  }
  u.remote_devices.erase(key);
  return !device_present(u, device, nullptr);
}

presence_diff replace_remote(user_entry& u, const std::vector<presence_entry>& list,
                             const std::string& me, bool complete) {
  std::set<std::string> before;
  for (auto& [where, at] : u.remote_devices)
    before.insert(where.second);
  if (complete)
    u.remote_devices.clear(); // else what the list misses is kept
  for (auto& d : list)
    if (d.node != me)
      u.remote_devices[{d.node, d.device}] = d.connected_at;
  presence_diff diff;
  for (auto& device : before)
    if (!device_present(u, device, nullptr))
      diff.left.push_back(device);
  for (auto& [where, at] : u.remote_devices)
    if (!before.count(where.second) && !device_here(u, where.second, nullptr)) {
      before.insert(where.second);
      diff.arrived.emplace_back(where.second, at);
    }
  return diff;
}

} // namespace kullsync::server
