// Where a master named by Redis Sentinel is (redis+sentinel:// URLs): one
// link per instance to one sentinel at a time, which answers
// SENTINEL get-master-addr-by-name and then, subscribed to +switch-master,
// tells of every failover. The command and subscriber links connect only
// to an address a sentinel gave, and the command link's peer must say it is
// a master (ROLE) before anything is written: no write goes to a replica.
// A failover is a new Redis run, so every stream of the instance starts a
// new epoch at its next touch (redis_scripts.hpp): devices resync.
#include <charconv>
#include <sstream>
#include <utility>

#include <caf/send.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "redis_connection.hpp"
#include "redis_io.hpp"
#include "redis_link.hpp"

namespace kullsync::broker {

namespace {

constexpr const char* switch_channel = "+switch-master";

std::string sentinel_name(const shard_link& s, size_t k) {
  auto& [host, port] = s.at.sentinels[k % s.at.sentinels.size()];
  return host + ":" + std::to_string(port);
}

/// A complaint that repeats each tick (a wrong master name, no sentinel
/// answering) is logged once every 10 s.
void complain(broker_ptr self, shard_link& s, const std::string& what) {
  if (!s.sentinel_log.should_log(steady_ms()))
    return;
  self->state.log->error("redis {}: {}: not ready until a sentinel names it", s.name(), what);
}

/// The master is at host:port (a sentinel said so): the links go there.
void move_master(broker_ptr self, shard_link& s, const std::string& host, uint16_t port,
                 const std::string& who) {
  bool same = s.at.host == host && s.at.port == port;
  s.master_known = true;
  s.sentinel_log.reset();
  if (same)
    return;
  self->state.log->warn("redis {}: {} says the master is at {}:{}: moving there", s.name(), who,
                        host, port);
  s.at.host = host;
  s.at.port = port;
  s.left_gen = s.cmd_gen; // its drop is this move, not a doubt
  drop(self, s.cmd, "the master moved");
  drop(self, s.sub, "the master moved");
}

void ask_master(broker_ptr self, shard_link& s) {
  auto index = s.index;
  auto gen = s.sentinel_gen;
  auto who = sentinel_name(s, s.next_sentinel - 1);
  s.sentinel_asked_ms = steady_ms();
  command_on(
    self, s.sentinel,
    std::make_shared<const std::vector<std::string>>(
      std::vector<std::string>{"SENTINEL", "get-master-addr-by-name", s.at.master_name}),
    [self, index, gen, who](redis_value v) {
      auto& s = self->state.shards[index];
      if (gen != s.sentinel_gen)
        return; // a link since replaced
      s.sentinel_asked_ms = 0;
      uint16_t port = 0;
      if (v.kind == redis_value::array && v.elements.size() == 2
          && v.elements[0].kind == redis_value::string
          && v.elements[1].kind == redis_value::string) {
        auto& p = v.elements[1].str;
        auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), port);
        if (ec != std::errc{} || end != p.data() + p.size() || port == 0)
          port = 0;
      }
      if (port == 0) {
        complain(self, s,
                 v.kind == redis_value::nil
                   ? "sentinel " + who + " knows no master named '" + s.at.master_name + "'"
                   : "sentinel " + who + " did not name the master ("
                       + (v.is_error() ? v.str : std::string{"not an address"}) + ")");
        return drop(self, s.sentinel, "no master named");
      }
      move_master(self, s, v.elements[0].str, port, "sentinel " + who);
      on_io(self, [c = s.sentinel] { c->subscribe({switch_channel}, true); });
    });
}

} // namespace

void watch_master(broker_ptr self, shard_link& s) {
  if (!s.by_sentinel())
    return;
  // A sentinel that took the question and never answers (a paused process:
  // its kernel still accepts) would keep the instance unready for good: the
  // next one is asked.
  auto patience = 3 * self->state.cfg.probe_interval.count();
  if (s.sentinel_up && s.sentinel_asked_ms != 0 && steady_ms() - s.sentinel_asked_ms > patience) {
    s.sentinel_asked_ms = 0;
    complain(self, s, "sentinel " + sentinel_name(s, s.next_sentinel - 1)
                        + " did not answer within " + std::to_string(patience) + " ms");
    drop(self, s.sentinel, "no answer");
    return;
  }
  if (s.sentinel_up || s.sentinel_connecting || !self->state.shared->io.load())
    return;
  auto h = handle(self);
  auto* unit = self->state.shared->unit;
  auto index = s.index;
  auto gen = ++s.sentinel_gen;
  redis_connection::handlers hs;
  hs.up = [h, unit, index, gen] {
    wake(unit, h, sentinel_atom::value, index, gen, true, std::string{});
  };
  hs.down = [h, unit, index, gen](const std::string& why) {
    wake(unit, h, sentinel_atom::value, index, gen, false, why);
  };
  hs.message = [h, unit, index, gen](std::string channel, std::string payload) {
    if (channel == switch_channel)
      wake(unit, h, switched_atom::value, index, gen, std::move(payload));
  };
  auto& [host, port] = s.at.sentinels[s.next_sentinel++ % s.at.sentinels.size()];
  auto old = std::move(s.sentinel);
  s.sentinel = std::make_shared<redis_connection>(*self->state.shared->io.load(), host, port,
                                                  std::move(hs));
  {
    std::lock_guard<std::mutex> guard{self->state.shared->mtx};
    self->state.shared->connections[{index, 2}] = s.sentinel;
  }
  s.sentinel_connecting = true;
  on_io(self, [old, c = s.sentinel, timeout = self->state.cfg.connect_timeout] {
    if (old)
      old->shutdown();
    c->connect(timeout);
  });
}

void on_sentinel_link(broker_ptr self, uint32_t index, uint64_t gen, bool up,
                      const std::string& why) {
  auto& s = self->state.shards.at(index);
  if (gen != s.sentinel_gen)
    return;
  s.sentinel_connecting = false;
  bool was_up = std::exchange(s.sentinel_up, up);
  if (!up) {
    // The next tick tries the next sentinel. One that could not be reached
    // is worth saying (a link this node dropped to ask again is not).
    if (!was_up && !s.master_known)
      complain(self, s, "sentinel " + sentinel_name(s, s.next_sentinel - 1) + ": " + why);
    return;
  }
  ask_master(self, s);
}

void on_switch_master(broker_ptr self, uint32_t index, uint64_t gen,
                      const std::string& payload) {
  auto& s = self->state.shards.at(index);
  if (gen != s.sentinel_gen)
    return;
  // "<master name> <old ip> <old port> <new ip> <new port>"
  std::istringstream in{payload};
  std::string name, old_ip, old_port, ip;
  unsigned port = 0;
  if (!(in >> name >> old_ip >> old_port >> ip >> port) || port == 0 || port > 65535) {
    self->state.log->warn("redis {}: a +switch-master that does not parse: '{}'", s.name(),
                          payload.substr(0, 200));
    return;
  }
  if (name == s.at.master_name)
    move_master(self, s, ip, static_cast<uint16_t>(port), "a failover (+switch-master)");
}

void ask_again(broker_ptr self, shard_link& s, const std::string& why) {
  if (!s.master_known)
    return; // already asking
  self->state.log->warn("redis {}: {}: asking the sentinels where the master is", s.name(), why);
  s.master_known = false;
  // Subscribed to +switch-master, the link asks nothing more: a new one asks.
  drop(self, s.sentinel, "asking again");
  drop(self, s.sub, "asking again");
}

void check_master(broker_ptr self, shard_link& s, std::function<void()> next) {
  auto index = s.index;
  command(self, s, {"ROLE"}, [self, index, next = std::move(next)](redis_value v) {
    auto& s = self->state.shards[index];
    bool answered = v.kind == redis_value::array && !v.elements.empty()
                    && v.elements[0].kind == redis_value::string;
    if (answered && v.elements[0].str == "master")
      return next();
    if (!answered) {
      // No role said: the link went (its loss is reported as such), or the
      // server refused (LOADING, NOAUTH, ...): that, not a replica, is why.
      if (v.kind == redis_value::unsent || v.kind == redis_value::lost)
        return;
      if (s.role_log.should_log(steady_ms()))
        self->state.log->error("redis {}: ROLE was not answered ({}): connecting again",
                               s.name(), v.is_error() ? v.str : "not a role");
      s.left_gen = s.cmd_gen; // this drop is no doubt about where the master is
      return drop(self, s.cmd, "no role");
    }
    auto& role = v.elements[0].str;
    auto what = s.at.host + ":" + std::to_string(s.at.port) + " is not the master (" + role + ")";
    if (s.by_sentinel()) {
      ask_again(self, s, what);
    } else if (s.role_log.should_log(steady_ms())) {
      // A plain URL names one server: it is tried again each tick.
      self->state.log->error("redis {}: not ready until it is a master", what);
    }
    s.explained_gen = s.cmd_gen; // tried again each tick: not a loss to warn of each time
    drop(self, s.cmd, "not the master");
  });
}

} // namespace kullsync::broker
