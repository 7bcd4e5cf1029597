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

/// A user's keys (redis_scripts.hpp).
struct user_keys {
  std::string prefix, state, stream, presence, channel;
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

/// The publish script's text for this node's limits (its constants).
std::string publish_script(const redis_broker_config& cfg);

/// One call of the publish script for a batch of publishes (each naming its
/// user), all from this node.
/// The script answers user by user: `order[i]` is the batch index of the
/// i-th receipt.
struct publish_batch {
  script_call call;
  std::vector<size_t> order;
};
publish_batch publish_call(const std::string& prefix,
                           const std::vector<const server::publish_request*>& batch,
                           const std::string& run, const std::string& new_epoch);
/// `now`: the wall clock (epoch ms), against which the history's lifetime
/// is counted from each message's publish time.
script_call head_call(const user_keys& k, const std::string& run,
                      const std::string& new_epoch, const std::string& alive_prefix,
                      int64_t now, const redis_broker_config& cfg);
script_call read_call(const user_keys& k, const std::string& run,
                      const std::string& new_epoch, const std::string& epoch,
                      uint64_t since, uint64_t upto, int64_t now,
                      const redis_broker_config& cfg);

/// Whether Redis refused a command before it could write anything (out of
/// memory, a replica, busy, loading, ...): a publish so refused certainly
/// did not happen.
bool refused_before_writing(const redis_value& v);

/// One publish's outcome: its receipt, or the script's refusal of it
/// (unavailable: nothing of it was written).
using publish_outcome = caf::expected<server::publish_receipt>;

/// The outcomes of a batch of `n` publishes, in order. Fails unavailable
/// when the batch certainly did not happen (never sent, or refused before
/// writing), outcome_unknown when it may have (the link went down with the
/// call under way, or the script answered something else).
caf::expected<std::vector<publish_outcome>> parse_publish(const redis_value& v, size_t n);
caf::expected<server::stream_head> parse_head(const redis_value& v);
caf::expected<server::stream_range> parse_read(const redis_value& v,
                                               const std::string& user);

/// The messages of a user's channel message (one or more records,
/// redis_scripts.hpp), each built once for every hub that follows the user;
/// nothing when any record is malformed.
std::vector<server::message_ptr> parse_channel_message(const std::string& user,
                                                       std::string_view payload);

/// Which mastership of which Redis process `info` (INFO server
/// replication) is: "run_id:master_replid". A stream belongs to the one
/// that wrote it (redis_scripts.hpp): a restart makes a new run_id, and a
/// promotion a new master_replid, also for a process that was master
/// before, was demoted, resynced from another and is promoted again (it may
/// have lost writes meanwhile). Nothing when either is missing.
std::optional<std::string> mastership_of(const std::string& info);
/// Whether `info` (INFO replication) says the server is a replica.
bool is_replica(const std::string& info);

/// The scripts need Redis 7.0 at least (`SET ... NX GET`): INFO server's
/// redis_version when it is older (or unreadable), else nothing.
std::optional<std::string> too_old_for_scripts(const std::string& info);

} // namespace kullsync::broker
