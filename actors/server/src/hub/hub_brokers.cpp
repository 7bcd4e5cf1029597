// The two brokers a hub shard may follow its streams through (hub_broker.hpp).
#include <caf/actor_system.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "../stream/local_broker.hpp"
#include "hub_state.hpp"

namespace kullsync::server {

namespace {

/// A node alone: the stream core in process. Everything is answered, and a
/// publish delivered, before the call returns.
class in_process final : public hub_broker {
public:
  in_process(hub_ptr self, const std::string& epoch_prefix, stream_limits limits)
    : self_(self),
      local_(
        epoch_prefix, limits, [self](const message_ptr& m) { on_message(self, m); },
        [self](const std::string& user) { return followed(self, user) != nullptr; }) {}

  void publish(publish_request req, reply<publish_receipt> done) override {
    done(local_.publish(std::move(req)));
  }
  void answer(uint64_t, caf::expected<publish_receipt>) override {}
  bool broker_down(const caf::actor_addr&) override { return false; }
  void follow(const std::string& user, reply<stream_head> done) override {
    done(local_.follow(user, now_ms(self_)));
  }
  void unfollow(const std::string&) override {}
  void read(const std::string& user, const std::string& epoch, uint64_t since,
            uint64_t upto, reply<stream_range> done) override {
    done(local_.read(user, epoch, since, upto, now_ms(self_)));
  }
  void head(const std::string& user, reply<stream_head> done) override {
    done(local_.head(user, now_ms(self_)));
  }
  void revoke(const revocation& r, reply<bool> done) override {
    self_->state.cfg.revocations->add(r); // this node is every node
    done(true);
  }
  void tick(int64_t now, std::chrono::milliseconds) override { local_.sweep(now); }
  bool may_lose() const override { return false; }
  stream_stats stats() const override { return local_.stats(); }

private:
  hub_ptr self_;
  local_broker local_;
};

/// A cluster: the broker actor; answers and deliveries come as messages.
class remote final : public hub_broker {
public:
  remote(hub_ptr self, broker_actor b) : self_(self), b_(std::move(b)) {
    self_->monitor(b_);
  }

  /// Publishes are many at once: answered by ticket (broker_actor), each
  /// found in a hashed map.
  void publish(publish_request req, reply<publish_receipt> done) override {
    if (gone_) // a message to it would be dropped unanswered
      return done(make_error(broker_errc::unavailable, "the broker stopped"));
    auto ticket = ++next_ticket_;
    publishes_.emplace(ticket, std::move(done));
    self_->send(b_, publish_atom::value, std::move(req), ticket, me_as_follower(self_));
  }
  void answer(uint64_t ticket, caf::expected<publish_receipt> r) override {
    if (auto waiting = publishes_.extract(ticket))
      waiting.mapped()(std::move(r));
  }
  bool broker_down(const caf::actor_addr& who) override {
    if (who != b_.address())
      return false;
    gone_ = true;
    // Whether the ones under way happened is not known.
    auto waiting = std::exchange(publishes_, {});
    for (auto& [ticket, done] : waiting)
      done(make_error(broker_errc::outcome_unknown, "the broker stopped"));
    return true;
  }
  void follow(const std::string& user, reply<stream_head> done) override {
    ask(done, follow_atom::value, user, me_as_follower(self_));
  }
  void unfollow(const std::string& user) override {
    self_->send(b_, unfollow_atom::value, user, me_as_follower(self_));
  }
  void read(const std::string& user, const std::string& epoch, uint64_t since,
            uint64_t upto, reply<stream_range> done) override {
    ask(done, read_atom::value, user, epoch, since, upto);
  }
  void head(const std::string& user, reply<stream_head> done) override {
    ask(done, head_atom::value, user);
  }
  void revoke(const revocation& r, reply<bool> done) override {
    ask(done, revoke_atom::value, r);
  }
  void tick(int64_t, std::chrono::milliseconds ttl) override {
    self_->send(b_, alive_atom::value, self_->state.cfg.cluster.instance,
                static_cast<int64_t>(ttl.count()));
  }
  bool may_lose() const override { return true; }
  stream_stats stats() const override { return {}; }

private:
  /// A request without a timeout of its own: the broker fails what it
  /// cannot answer (server_config::cluster).
  template <class T, class... Ts>
  void ask(reply<T> done, Ts&&... xs) {
    self_->request(b_, caf::infinite, std::forward<Ts>(xs)...)
      .then([done](T& x) { done(std::move(x)); },
            [done](caf::error& err) { done(std::move(err)); });
  }

  hub_ptr self_;
  broker_actor b_;
  uint64_t next_ticket_ = 0;
  bool gone_ = false; // the broker stopped
  std::unordered_map<uint64_t, reply<publish_receipt>> publishes_;
};

} // namespace

std::unique_ptr<hub_broker> make_local_broker(hub_ptr self, const std::string& epoch_prefix) {
  auto& cfg = self->state.cfg;
  stream_limits l;
  l.history_size = cfg.history.size;
  l.history_ttl_ms = cfg.history.ttl_ms;
  l.history_bytes = cfg.history.memory_bytes;
  l.dedup_ttl_ms = dedup_window_ms(cfg.history);
  l.dedup_per_user = std::max<size_t>(1000, 4 * cfg.history.size);
  l.max_shoots = cfg.state.shoots_per_user;
  l.field_idle_ms = cfg.state.shoot_idle_ms;
  l.user_idle_ms = cfg.state.user_idle_ms;
  l.state_bytes = cfg.state.memory_bytes;
  return std::make_unique<in_process>(self, epoch_prefix, l);
}

std::unique_ptr<hub_broker> make_actor_broker(hub_ptr self, broker_actor b) {
  return std::make_unique<remote>(self, std::move(b));
}

} // namespace kullsync::server
