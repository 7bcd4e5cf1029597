// What operators ask of a hub shard (the HTTP API's users/* routes), each
// answered for the whole cluster: the broker's head lists the user's devices
// on every node, and an order to close sockets travels in the user's stream
// as a control message, which every node that follows the user (every node
// with one of its sockets) carries out; it never reaches a device.
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <caf/actor_system.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "hub_state.hpp"
#include "kullsync/messages/codec.hpp"

namespace kullsync::server {

namespace {

namespace json = boost::json;

/// {"close":{"device":D|null,"code":C,"reason":R}}
std::string close_order(const std::string& device, uint16_t code, const std::string& reason) {
  std::string o = R"({"close":{"device":)";
  o += device.empty() ? std::string{"null"} : msg::json_string(device);
  o += R"(,"code":)";
  o += std::to_string(code);
  o += R"(,"reason":)";
  o += msg::json_string(reason);
  o += "}}";
  return o;
}

/// How many of the user's connections (one per node and device) an order
/// for `device` ("" all) reaches.
uint64_t reached(const stream_head& h, const std::string& device) {
  uint64_t n = 0;
  for (auto& d : h.devices)
    n += device.empty() || d.device == device ? 1 : 0;
  return n;
}

} // namespace

void carry_out_order(hub_ptr self, user_entry& u, const stream_message& m) {
  boost::system::error_code ec;
  auto v = json::parse(m.frame.str(), ec);
  auto* close = !ec && v.is_object() ? v.get_object().if_contains("close") : nullptr;
  auto* c = close && close->is_object() ? &close->get_object() : nullptr;
  auto* code = c ? c->if_contains("code") : nullptr;
  auto* reason = c ? c->if_contains("reason") : nullptr;
  auto* device = c ? c->if_contains("device") : nullptr;
  if (!c || !code || !code->is_int64() || code->get_int64() < 1000
      || code->get_int64() > 4999 || !reason || !reason->is_string() || !device
      || !(device->is_null() || device->is_string())) {
    self->state.log->warn("user {}: an order from node {} is not one this node knows: "
                          "ignored", m.user(), m.origin);
    return;
  }
  auto n = 0;
  for (auto& s : u.sockets) {
    if (s.closing || (device->is_string() && s.device_id != device->get_string()))
      continue;
    close_socket(self, s, static_cast<uint16_t>(code->get_int64()),
                 std::string{reason->get_string()}.c_str());
    ++n;
  }
  if (n > 0)
    self->state.log->info("user {}: {} socket(s) closed with {} on an operator's order",
                          m.user(), n, code->get_int64());
}

caf::result<uint64_t> close_sockets(hub_ptr self, const std::string& user,
                                    const std::string& device, uint16_t code,
                                    const std::string& reason) {
  auto rp = self->make_response_promise<uint64_t>();
  self->state.broker->head(user, [=](caf::expected<stream_head> h) mutable {
    if (!h) {
      rp.deliver(std::move(h.error()));
      return;
    }
    auto n = reached(*h, device);
    publish_request req;
    req.user = user;
    req.origin = self->state.cfg.cluster.instance;
    req.frame = close_order(device, code, reason);
    req.control = true;
    req.now = now_ms(self);
    self->state.broker->publish(std::move(req),
                                [rp, n](caf::expected<publish_receipt> r) mutable {
                                  if (r)
                                    rp.deliver(n);
                                  else
                                    rp.deliver(std::move(r.error()));
                                });
  });
  return rp;
}

caf::result<uint64_t> revoke(hub_ptr self, const revocation& r) {
  auto rp = self->make_response_promise<uint64_t>();
  self->state.broker->revoke(r, [=](caf::expected<bool> ok) mutable {
    if (!ok) {
      rp.deliver(std::move(ok.error()));
      return;
    }
    self->state.log->info("user {}: tokens issued before {} revoked", r.user, r.before_ms);
    // The revocation is in force on every node now, which closes the
    // revoked sockets itself (each node's sessions check their token
    // again); the close order only makes it prompt. Its failure (the
    // user's own instance lost) does not undo the revocation: the
    // operator is told it happened, or would revoke the fresh logins too.
    self
      ->request(caf::actor_cast<hub_actor>(self), caf::infinite, close_atom::value, r.user,
                std::string{}, close_code::invalid_token, std::string{"Token revoked"})
      .then([rp](uint64_t n) mutable { rp.deliver(n); },
            [self, rp, user = r.user](const caf::error& e) mutable {
              self->state.log->warn("user {}: revoked; the order to close its sockets at "
                                    "once failed ({}): they close as each node checks "
                                    "their tokens", user, self->system().render(e));
              rp.deliver(uint64_t{0});
            });
  });
  return rp;
}

uint64_t drain_some(hub_ptr self, uint32_t quota) {
  auto& st = self->state;
  st.shedding = true;
  uint64_t left = 0;
  for (auto& [user, u] : st.users)
    for (auto& s : u.sockets) {
      if (s.closing)
        continue;
      if (quota == 0) {
        ++left;
        continue;
      }
      --quota;
      close_socket(self, s, close_code::going_away, "server draining");
    }
  return left;
}

void recheck_tokens(hub_ptr self, const std::string& user) {
  auto i = self->state.users.find(user);
  if (i == self->state.users.end())
    return;
  for (auto& s : i->second.sockets)
    if (!s.closing)
      self->send(s.session, revoked_atom::value);
}

} // namespace kullsync::server
