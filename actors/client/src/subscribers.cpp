#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/exit_reason.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "kullsync/log.hpp"

#include "spawn.hpp"

namespace kullsync {

namespace {

struct typed_sub {
  msg::server_type type; // unknown: every type
  message_subscriber_actor who;
};

struct subscribers_state {
  std::vector<state_subscriber_actor> state_subs;
  std::vector<status_subscriber_actor> status_subs;
  std::vector<typed_sub> message_subs;
  // The last (state_atom, sync_state) and (status_atom, connection_status)
  // messages, built once and shared by every subscriber and newcomer.
  caf::message last_state = caf::make_message(state_atom::value, sync_state{});
  caf::message last_status = caf::make_message(status_atom::value, connection_status{});
  // Why the engine ends, from the exit taken while the adapters are flushed.
  caf::error ending;
  bool flushing = false;
  static inline const char* name = "kullsync.subscribers";
};

using subs_ptr = subscribers_impl::stateful_pointer<subscribers_state>;

/// Sends a message built once with caf::make_message: every subscriber's
/// mailbox shares it (copy-on-write), where a send per subscriber would copy
/// the whole sync_state for each.
template <class Handle>
void send_shared(subs_ptr self, const Handle& dest, const caf::message& m) {
  if (auto* ptr = caf::actor_cast<caf::abstract_actor*>(dest))
    ptr->enqueue(self->ctrl(), caf::make_message_id(), m, self->context());
}

template <class Handle>
bool contains(const std::vector<Handle>& xs, const Handle& x) {
  return std::find(xs.begin(), xs.end(), x) != xs.end();
}

void remove(subs_ptr self, const caf::actor_addr& who) {
  auto& st = self->state;
  auto same = [&](const auto& h) { return h.address() == who; };
  st.state_subs.erase(std::remove_if(st.state_subs.begin(), st.state_subs.end(), same),
                      st.state_subs.end());
  st.status_subs.erase(std::remove_if(st.status_subs.begin(), st.status_subs.end(), same),
                       st.status_subs.end());
  st.message_subs.erase(
    std::remove_if(st.message_subs.begin(), st.message_subs.end(),
                   [&](const typed_sub& s) { return same(s.who); }),
    st.message_subs.end());
}

/// How long the engine's end waits for a callback adapter's backlog.
constexpr std::chrono::seconds flush_patience{10};

/// The engine ends: each callback adapter subscribed is asked to flush,
/// and this actor ends once all answered (or ended), so that await_stop()
/// returns after the app's last callback, the "disconnected" among them.
void flush_then_quit(subs_ptr self) {
  auto& st = self->state;
  std::vector<caf::actor_addr> seen;
  std::vector<flushable_actor> adapters;
  auto add = [&](const auto& h) {
    auto* a = dynamic_cast<caf::local_actor*>(caf::actor_cast<caf::abstract_actor*>(h));
    if (a == nullptr || std::strcmp(a->name(), callback_actor_name) != 0)
      return;
    if (std::find(seen.begin(), seen.end(), h.address()) != seen.end())
      return;
    seen.push_back(h.address());
    adapters.push_back(caf::actor_cast<flushable_actor>(h));
  };
  for (auto& h : st.state_subs)
    add(h);
  for (auto& h : st.status_subs)
    add(h);
  for (auto& s : st.message_subs)
    add(s.who);
  if (adapters.empty())
    return self->quit(st.ending);
  auto left = std::make_shared<size_t>(adapters.size());
  auto one_done = [self, left] {
    if (--*left == 0)
      self->quit(self->state.ending);
  };
  // Bounded: a callback that waits on the thread calling await_stop()
  // would otherwise hold both for ever.
  for (auto& a : adapters)
    self->request(a, flush_patience, flush_atom::value)
      .then([one_done](bool) { one_done(); },
            [self, one_done](const caf::error& e) {
              if (e == caf::sec::request_timeout)
                log::get("client.subscribers")
                  ->warn("a callback did not return within {} s of the engine's stop: "
                         "await_stop() returns without it",
                         flush_patience.count());
              one_done(); // else it ended
            });
}

bool wants(const typed_sub& s, const msg::server_message& x) {
  return s.type == msg::server_type::unknown || s.type == x.type;
}

/// Sends each message subscriber the messages of its type, as one batch. The
/// last subscriber that wants the whole batch gets it without a copy.
void publish(subs_ptr self, inbound_batch&& xs) {
  if (xs.empty())
    return; // e.g. a BATCH without parts
  auto& subs = self->state.message_subs;
  const typed_sub* takes_all = nullptr;
  for (auto& s : subs) {
    if (std::all_of(xs.begin(), xs.end(), [&](auto& x) { return wants(s, x); })) {
      if (takes_all != nullptr)
        self->send(takes_all->who, inbound_atom::value, xs);
      takes_all = &s;
      continue;
    }
    inbound_batch mine;
    for (auto& x : xs)
      if (wants(s, x))
        mine.push_back(x);
    if (!mine.empty())
      self->send(s.who, inbound_atom::value, std::move(mine));
  }
  if (takes_all != nullptr)
    self->send(takes_all->who, inbound_atom::value, std::move(xs));
}

subscribers_impl::behavior_type subscribers(subs_ptr self) {
  // A subscriber that terminates is dropped, never sent to again.
  self->set_down_handler([=](const caf::down_msg& dm) { remove(self, dm.source); });
  // Taken from the coordinator (linked): what it sent before is still
  // queued behind the exit, so the flush is sent after it.
  self->set_exit_handler([=](const caf::exit_msg& em) {
    auto& st = self->state;
    if (st.flushing)
      return;
    st.flushing = true;
    st.ending = em.reason ? em.reason : caf::make_error(caf::exit_reason::normal);
    self->send(self, flush_atom::value);
  });
  return {
    [=](subscribe_atom, state_subscriber_actor who) {
      auto& st = self->state;
      if (st.flushing || contains(st.state_subs, who)) // ending: none new
        return;
      self->monitor(who);
      send_shared(self, who, st.last_state);
      st.state_subs.push_back(std::move(who));
    },
    [=](subscribe_atom, status_subscriber_actor who) {
      auto& st = self->state;
      if (st.flushing || contains(st.status_subs, who))
        return;
      self->monitor(who);
      send_shared(self, who, st.last_status);
      st.status_subs.push_back(std::move(who));
    },
    [=](subscribe_atom, msg::server_type type, message_subscriber_actor who) {
      if (self->state.flushing)
        return;
      auto& subs = self->state.message_subs;
      for (auto& s : subs)
        if (s.who == who && s.type == type)
          return;
      self->monitor(who);
      subs.push_back(typed_sub{type, std::move(who)});
    },
    [=](unsub_atom, const caf::actor_addr& who) { remove(self, who); },
    [=](publish_atom, const sync_state& x) {
      auto& st = self->state;
      st.last_state = caf::make_message(state_atom::value, x);
      for (auto& s : st.state_subs)
        send_shared(self, s, st.last_state);
    },
    [=](publish_atom, const connection_status& x) {
      auto& st = self->state;
      st.last_status = caf::make_message(status_atom::value, x);
      for (auto& s : st.status_subs)
        send_shared(self, s, st.last_status);
    },
    [=](publish_atom, inbound_batch& xs) { publish(self, std::move(xs)); },
    [=](flush_atom) { flush_then_quit(self); },
  };
}

} // namespace

subscribers_impl spawn_subscribers(caf::actor_system& sys) {
  return sys.spawn(subscribers);
}

} // namespace kullsync
