// The redis_broker object: the actor's owner on the application's side
// (start on an io thread, stop, readiness, metrics).
#include <future>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "kullsync/metrics.hpp"
#include "redis_codec.hpp"
#include "redis_connection.hpp"
#include "redis_link.hpp"

namespace kullsync::broker {

void add_broker_types(caf::actor_system_config& cfg) {
  cfg.add_message_type<redis_value>("kullsync::redis_value");
}

redis_broker::redis_broker(caf::actor_system& sys, redis_broker_config cfg)
  : shared_(std::make_shared<shared>()) {
  shared_->revocations_known = !cfg.revocations; // none kept: none to read
  for (auto& e : cfg.shards)
    instance_names_.push_back(e.master_name.empty()
                                ? e.host + ":" + std::to_string(e.port)
                                : "master " + e.master_name);
  actor_ = caf::actor_cast<server::broker_actor>(
    sys.spawn(redis_broker_actor, std::move(cfg), shared_));
}

redis_broker::~redis_broker() {
  stop();
}

server::broker_actor redis_broker::actor() const {
  return actor_;
}

void redis_broker::start(boost::asio::io_context& io, caf::execution_unit* unit) {
  shared_->unit = unit;
  shared_->io = &io;
  caf::anon_send(caf::actor_cast<broker_impl>(actor_), tick_atom::value);
}

void redis_broker::stop() {
  if (!actor_)
    return;
  if (auto* io = shared_->io.exchange(nullptr)) {
    std::vector<std::shared_ptr<redis_connection>> links;
    {
      std::lock_guard<std::mutex> guard{shared_->mtx};
      for (auto& [key, c] : shared_->connections)
        links.push_back(c);
      shared_->connections.clear();
    }
    // hiredis lives on the io thread: it is freed there.
    auto done = std::make_shared<std::promise<void>>();
    boost::asio::post(*io, [links, done] {
      for (auto& c : links)
        c->shutdown();
      done->set_value();
    });
    done->get_future().wait_for(std::chrono::seconds{1});
  }
  caf::anon_send_exit(actor_, caf::exit_reason::user_shutdown);
  // Its state holds the links' timers, which belong to the io_context: the
  // actor is gone before the caller destroys that (not stop() from an actor).
  caf::scoped_actor self{actor_->home_system()};
  self->wait_for(actor_);
  actor_ = nullptr;
}

bool redis_broker::ready() const {
  return shared_->ready_shards > 0 && shared_->revocations_known;
}

std::string redis_broker::instance_of(const std::string& user) const {
  if (instance_names_.empty())
    return {};
  return instance_names_[shard_of(user, static_cast<uint32_t>(instance_names_.size()))];
}

void redis_broker::write_metrics(metrics::writer& w) const {
  auto& s = *shared_;
  write_group(w, s);
  w.histogram("kullsync_broker_publish_seconds", "Publish script round trips",
              s.publish_latency);
}

} // namespace kullsync::broker
