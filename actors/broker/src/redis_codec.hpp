#pragma once

// Private to the broker: where a user's data lives in Redis, the arguments
// of each script, and what its replies mean. Every reply is checked: a
// reply of the wrong shape is a bad_reply error, never a crash. No I/O.

#include <optional>
#include <string>
#include <vector>

#include <caf/expected.hpp>

#include "kullsync/broker/redis_broker.hpp"
#include "redis_value.hpp"

namespace kullsync::broker {

struct user_keys {
  std::string meta, stream, state, terms, updates, presence, channel, dedup_prefix;
};

user_keys keys_for(const std::string& prefix, const std::string& user);

/// The user a channel name belongs to (nothing: not a user channel).
std::optional<std::string> user_of_channel(const std::string& prefix,
                                           const std::string& channel);

/// The instance that holds `user`: a jump consistent hash of a stable hash
/// of the id, so every node agrees and few users move when one is added.
uint32_t shard_of(const std::string& user, uint32_t shards);

/// A script's keys and arguments.
struct script_call {
  std::vector<std::string> keys;
  std::vector<std::string> args;
};

script_call publish_call(const user_keys& k, const server::publish_request& req,
                         const redis_broker_config& cfg, const std::string& run,
                         const std::string& new_epoch);
script_call head_call(const user_keys& k, const std::string& run,
                      const std::string& new_epoch, const std::string& alive_prefix,
                      const redis_broker_config& cfg);
script_call read_call(const user_keys& k, const std::string& run,
                      const std::string& new_epoch, const std::string& epoch,
                      uint64_t since, uint64_t upto, const redis_broker_config& cfg);

caf::expected<server::publish_receipt> parse_publish(const redis_value& v);
caf::expected<server::stream_head> parse_head(const redis_value& v);
caf::expected<server::stream_range> parse_read(const redis_value& v,
                                               const std::string& user);

/// A message of a user's channel (redis_scripts.hpp), built once for every
/// hub that follows the user.
server::message_ptr parse_channel_message(std::string user, std::string_view payload);

/// The run_id line of INFO server.
std::optional<std::string> run_id_of(const std::string& info);

} // namespace kullsync::broker
