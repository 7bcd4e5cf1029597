// kullsync-server: the legacy-compatible sync server (HTTP + WebSocket on one
// port). Every flag can also be set through the environment variable named
// in --help.
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <pthread.h>
#include <thread>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>

#include "kullsync/broker/redis_broker.hpp"
#include "kullsync/version.hpp"
#include "kullsync/log.hpp"
#include "kullsync/server/server.hpp"
#include "kullsync/transports/beast_server.hpp"
#include "config_file.hpp"
#include "options.hpp"

int main(int argc, char** argv) {
  CLI::App app{"kullsync-server: real-time sync server speaking the Kull protocol, "
               "v1 and v2 (WebSocket on /ws, HTTP triggers under /api/sync)"};
  app.set_version_flag("--version", std::string{"kullsync-server "} + kullsync::version);
  kullsync::app::server_options o;
  kullsync::app::add_flags(app, o);
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e); // says what was wrong
    return 2;    // a usage error, as for a bad config value (CLI11's own codes vary)
  }
  if (!o.config.empty()) {
    try {
      kullsync::app::apply_config_file(app, o.config);
    } catch (const std::exception& e) {
      std::cerr << "kullsync-server: --config " << e.what() << "\n";
      return 2;
    }
  }

  kullsync::beast_server_options bo;
  if (!kullsync::app::make_listener_options(o, bo))
    return 2;
  kullsync::server::server_config sc;
  try {
    sc = kullsync::app::make_server_config(o);
  } catch (const std::exception& e) {
    std::cerr << "kullsync-server: " << e.what() << "\n";
    return 2;
  }
  kullsync::broker::redis_broker_config rc;
  for (auto& urls : o.brokers)
    for (auto& url : kullsync::broker::split_broker_list(urls)) {
      std::string error;
      auto at = kullsync::broker::parse_redis_url(url, error);
      if (!at) {
        std::cerr << "kullsync-server: --broker " << error << "\n";
        return 2;
      }
      rc.shards.push_back(*at);
    }
  if (o.node_id.empty()) {
    char host[256] = {};
    gethostname(host, sizeof(host) - 1);
    o.node_id = host;
  }
  rc.history_size = o.history_size;
  rc.history_ttl_ms = sc.history.ttl_ms;
  rc.dedup_ttl_ms = kullsync::server::dedup_window_ms(sc.history);
  rc.state_ttl_ms = sc.state.user_idle_ms;
  rc.max_shoots = sc.state.shoots_per_user;
  rc.field_idle_ms = sc.state.shoot_idle_ms;
  // What every node shares besides streams: revoked tokens, and what each
  // node says of itself (GET /api/sync/nodes).
  sc.node_epoch = kullsync::server::new_node_epoch();
  sc.counters = std::make_shared<kullsync::server::server_counters>();
  sc.revocations = std::make_shared<kullsync::server::revocation_list>();
  sc.started_at_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  rc.instance = kullsync::server::node_instance(o.node_id, sc.node_epoch);
  rc.revocations = sc.revocations;
  kullsync::log::set_level(o.log_level);
  kullsync::log::set_format(o.log_format);
  auto lg = kullsync::log::get("server.main");

  // Signals are taken by sigwait below, on this thread only.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP); // no reload: logged and ignored, never a kill
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  caf::actor_system_config cfg;
  kullsync::server::add_server_types(cfg);
  kullsync::broker::add_broker_types(cfg);
  cfg.set("logger.file-verbosity", caf::atom("quiet"));
  // Every handoff between threads costs a wake-up (a futex, a context switch):
  // more threads than cores only adds them. Measured on 2 cores with the
  // fan-out benchmark: 1 io thread + 1 worker does ~1.3x the deliveries per
  // CPU second of 1 + 2.
  auto workers = o.workers;
  if (workers == 0) {
    auto hw = std::max(1u, std::thread::hardware_concurrency());
    workers = hw > o.io_threads ? hw - o.io_threads : 1;
  }
  cfg.set("scheduler.max-threads", workers);
  // CAF's moderate polling sleeps 50 us at a time for 25 ms whenever a worker
  // runs dry: on a busy 2-core machine those wake-ups cost more CPU than the
  // messages. Blocking on the worker's condition variable costs one futex wake
  // per enqueue to a sleeping worker instead.
  if (o.idle_workers == "block")
    cfg.set("work-stealing.moderate-poll-attempts", size_t{0});
  caf::actor_system sys{cfg};

  // The listener is made after the server's actors, which report its
  // metrics: they reach it through this pointer, set before it serves.
  auto listener_ref = std::make_shared<std::atomic<kullsync::beast_server*>>(nullptr);
  // Not ready from the signal to stop on (a balancer sends no more sockets
  // to a node that is closing them), nor while an operator drains it; a
  // cluster node is ready while a Redis instance is (redis_broker::ready).
  auto stopping = std::make_shared<std::atomic<bool>>(false);
  sc.draining = std::make_shared<std::atomic<bool>>(false);
  auto weak_broker = std::make_shared<std::weak_ptr<kullsync::broker::redis_broker>>();
  sc.ready = [stopping, draining = sc.draining, weak_broker, clustered = !rc.shards.empty()] {
    if (*stopping || *draining)
      return false;
    auto b = weak_broker->lock();
    return !clustered || (b && b->ready());
  };
  // A cluster node: streams through Redis.
  std::shared_ptr<kullsync::broker::redis_broker> broker;
  if (!rc.shards.empty()) {
    // Read on the io thread at every probe interval (atomics only); the
    // broker is set before it starts.
    rc.describe = [node_id = o.node_id, at = sc.started_at_ms, counters = sc.counters,
                   ready = sc.ready] {
      return kullsync::server::node_description(node_id, at, *counters, ready());
    };
    broker = std::make_shared<kullsync::broker::redis_broker>(sys, rc);
    *weak_broker = broker;
    sc.cluster.broker = broker->actor();
    sc.cluster.position_check = std::chrono::seconds{o.position_check};
    sc.cluster.store_of = [weak_broker](const std::string& user) {
      auto b = weak_broker->lock();
      return b ? b->instance_of(user) : std::string{};
    };
  }
  sc.cluster.node_id = o.node_id;
  if (!o.revocations_file.empty() && broker) {
    lg->info("--revocations-file {} is not used: the cluster keeps revocations in Redis",
             o.revocations_file);
  } else if (!o.revocations_file.empty()) {
    if (auto why = sc.revocations->keep_in(o.revocations_file, sc.started_at_ms)) {
      lg->critical("the revocations file: {}", *why);
      return 2;
    }
    lg->info("revocations kept in {}", o.revocations_file);
  }
  sc.transport_metrics = [listener_ref, broker](kullsync::metrics::writer& w) {
    if (auto* l = listener_ref->load())
      l->write_metrics(w);
    if (broker)
      broker->write_metrics(w);
  };
  auto server = kullsync::server::spawn_sync_server(sys, sc);

  kullsync::beast_server listener{sys, bo, server.acceptor, server.http_api};
  *listener_ref = &listener;
  uint16_t port = 0;
  try {
    port = listener.start();
  } catch (const std::invalid_argument& e) {
    std::cerr << "kullsync-server: " << e.what() << "\n";
    server.stop();
    return 2;
  } catch (const std::exception& e) {
    lg->critical("cannot listen on {}: {}", o.listen, e.what());
    server.stop();
    return 1;
  }
  if (broker) {
    broker->start(listener.io(), listener.io_unit());
    lg->info("node {} in a cluster of {} Redis instance(s)", o.node_id, rc.shards.size());
  }
  // One machine-readable line, so scripts can use --listen HOST:0.
  std::printf("{\"listening\":\"%s:%u\"}\n", bo.host.c_str(), port);
  std::fflush(stdout);

  int sig = 0;
  while (sigwait(&signals, &sig) == 0 && sig == SIGHUP)
    lg->warn("SIGHUP ignored: nothing is reloaded (restart the node to apply a change; "
             "SIGTERM drains it)");
  *stopping = true;
  lg->info("{}: not ready; closing every socket with 1001 and stopping",
           sig == SIGINT ? "SIGINT" : "SIGTERM");
  auto hubs = server.stats(sys); // while the histories are still there
  if (broker) {
    // The sockets go first, while Redis still hears of it: the other
    // nodes' devices see this node's devices leave at once.
    if (!server.close_all(sys, kullsync::close_code::going_away, "server going away",
                          std::chrono::seconds{3}))
      lg->warn("stopping before Redis heard of every device leaving (3 s): the other "
               "nodes see them leave at their next position check");
    broker->stop(); // on the io thread, which stops next
  }
  listener.stop(std::chrono::seconds{3});
  *listener_ref = nullptr;
  server.stop();
  auto st = listener.stats();
  lg->info("stopped: {} sockets served, {} HTTP requests, {} slow consumers cut",
           st.sockets_accepted, st.http_requests, st.slow_consumers_closed);
  // The closing counterpart of the "listening" line, for benchmarks: how many
  // WebSocket frames left in how many socket sends, and what the v2
  // histories held.
  using ull = unsigned long long;
  std::printf("{\"stopped\":true,\"sockets_served\":%llu,\"frames_written\":%llu,"
              "\"socket_sends\":%llu,\"history_entries\":%llu,\"history_bytes\":%llu,"
              "\"history_evicted\":%llu,\"resumes_recovered\":%llu,"
              "\"resumes_snapshot\":%llu}\n",
              ull{st.sockets_accepted}, ull{st.frames_written}, ull{st.socket_sends},
              ull{hubs.history_entries}, ull{hubs.history_bytes}, ull{hubs.history_evicted},
              ull{hubs.resumes_recovered}, ull{hubs.resumes_snapshot});
  std::fflush(stdout);
  return 0;
}
