// kullsync-server: the legacy-compatible sync server (HTTP + WebSocket on one
// port). Every flag can also be set through the environment variable named
// in --help.
#include <csignal>
#include <cstdio>
#include <iostream>
#include <pthread.h>
#include <thread>

#include <CLI/CLI.hpp>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>

#include "kullsync/log.hpp"
#include "kullsync/server/server.hpp"
#include "kullsync/transports/beast_server.hpp"

namespace {

/// Splits HOST:PORT or [V6]:PORT; false if malformed.
bool parse_listen(const std::string& s, std::string& host, uint16_t& port) {
  auto colon = s.rfind(':');
  if (colon == std::string::npos || colon + 1 == s.size())
    return false;
  host = s.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  if (host.empty())
    return false;
  auto p = s.substr(colon + 1);
  if (p.size() > 5 || p.find_first_not_of("0123456789") != std::string::npos)
    return false;
  auto n = std::stoul(p);
  if (n > 65535)
    return false;
  port = static_cast<uint16_t>(n);
  return true;
}

} // namespace

int main(int argc, char** argv) {
  CLI::App app{"kullsync-server: real-time sync server speaking the Kull protocol, "
               "v1 and v2 (WebSocket on /ws, HTTP triggers under /api/sync)"};
  std::string listen = "0.0.0.0:5000";
  std::string auth = "legacy";
  unsigned ping_interval = 30;
  unsigned handshake_timeout = 10;
  std::string admin_user = "admin";
  std::string log_level = "info";
  size_t shards = 0;
  size_t io_threads = 1;
  size_t workers = 0;
  std::string idle_workers = "block";
  std::string actors_on_io = "on";
  size_t max_frame = 64 * 1024;
  size_t max_sockets = 64;
  size_t max_queued_frames = 4096;
  size_t max_queued_bytes = 4 * 1024 * 1024;
  size_t max_http_body = 64 * 1024;
  size_t history_size = 1000;
  unsigned history_ttl = 600;
  size_t history_memory_mb = 256;
  size_t max_replay = 2000;
  app.add_option("--listen", listen, "HOST:PORT to serve on (port 0: any free port)")
    ->envname("KULLSYNC_LISTEN")->capture_default_str();
  app.add_option("--auth", auth, "token scheme: legacy (userId:deviceId, unverified)")
    ->envname("KULLSYNC_AUTH")->check(CLI::IsMember({"legacy"}))->capture_default_str();
  app.add_option("--ping-interval", ping_interval,
                 "seconds between protocol pings; a socket silent for two is dropped")
    ->envname("KULLSYNC_PING_INTERVAL")->check(CLI::Range(1u, 3600u))->capture_default_str();
  app.add_option("--handshake-timeout", handshake_timeout,
                 "seconds allowed for an HTTP request, a WebSocket upgrade or a close")
    ->envname("KULLSYNC_HANDSHAKE_TIMEOUT")->check(CLI::Range(1u, 600u))->capture_default_str();
  app.add_option("--admin-user", admin_user,
                 "user that receives ADMIN_SESSION_UPDATE and PROVIDER_HEALTH")
    ->envname("KULLSYNC_ADMIN_USER")->capture_default_str();
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error|critical|off")
    ->envname("KULLSYNC_LOG_LEVEL")
    ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}))
    ->capture_default_str();
  app.add_option("--shards", shards, "hub shards (0: one per hardware thread)")
    ->envname("KULLSYNC_SHARDS")->check(CLI::Range(size_t{0}, size_t{1024}))->capture_default_str();
  app.add_option("--io-threads", io_threads,
                 "socket threads; each serves the sockets it was given alone")
    ->envname("KULLSYNC_IO_THREADS")->check(CLI::Range(size_t{1}, size_t{64}))->capture_default_str();
  app.add_option("--workers", workers, "actor scheduler threads (0: the hardware threads left "
                 "after --io-threads, at least one)")
    ->envname("KULLSYNC_WORKERS")->check(CLI::Range(size_t{0}, size_t{256}))->capture_default_str();
  app.add_option("--idle-workers", idle_workers,
                 "what an idle actor thread does: block (spin briefly, then wait to be "
                 "woken) or poll (CAF's default: 25 ms of 50 us sleeps first)")
    ->envname("KULLSYNC_IDLE_WORKERS")->check(CLI::IsMember({"block", "poll"}))
    ->capture_default_str();
  app.add_option("--actors-on-io", actors_on_io,
                 "on: sessions and hubs run on the io thread when a socket wakes them "
                 "(no thread handoff per frame); off: always on the actor threads")
    ->envname("KULLSYNC_ACTORS_ON_IO")->check(CLI::IsMember({"on", "off"}))
    ->capture_default_str();
  app.add_option("--max-frame-bytes", max_frame, "largest client frame (larger: close 1009)")
    ->envname("KULLSYNC_MAX_FRAME_BYTES")->check(CLI::Range(size_t{128}, size_t{16} << 20))
    ->capture_default_str();
  app.add_option("--max-sockets-per-user", max_sockets, "more sockets of one user: close 1008")
    ->envname("KULLSYNC_MAX_SOCKETS_PER_USER")->check(CLI::Range(size_t{1}, size_t{100000}))
    ->capture_default_str();
  app.add_option("--max-queued-frames", max_queued_frames,
                 "frames queued for one socket before it is cut as a slow consumer (1008)")
    ->envname("KULLSYNC_MAX_QUEUED_FRAMES")->check(CLI::Range(size_t{1}, size_t{1} << 24))
    ->capture_default_str();
  app.add_option("--max-queued-bytes", max_queued_bytes, "bytes queued for one socket, likewise")
    ->envname("KULLSYNC_MAX_QUEUED_BYTES")->check(CLI::Range(size_t{1024}, size_t{1} << 34))
    ->capture_default_str();
  app.add_option("--max-http-body", max_http_body, "largest HTTP body (larger: 413)")
    ->envname("KULLSYNC_MAX_HTTP_BODY")->check(CLI::Range(size_t{128}, size_t{64} << 20))
    ->capture_default_str();
  app.add_option("--history-size", history_size,
                 "v2: messages of each user's stream kept for resuming devices")
    ->envname("KULLSYNC_HISTORY_SIZE")->check(CLI::Range(size_t{1}, size_t{1000000}))
    ->capture_default_str();
  app.add_option("--history-ttl", history_ttl,
                 "v2: seconds a message is kept for resuming devices")
    ->envname("KULLSYNC_HISTORY_TTL")->check(CLI::Range(1u, 86400u))->capture_default_str();
  app.add_option("--history-memory-mb", history_memory_mb,
                 "v2: all users' histories together; past it the oldest messages go first")
    ->envname("KULLSYNC_HISTORY_MEMORY_MB")->check(CLI::Range(size_t{1}, size_t{1} << 20))
    ->capture_default_str();
  app.add_option("--max-replay", max_replay,
                 "v2: a resume missing more messages gets a SNAPSHOT instead (at most 3500: "
                 "a socket queues 4096 frames)")
    ->envname("KULLSYNC_MAX_REPLAY")->check(CLI::Range(size_t{1}, size_t{3500}))
    ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  kullsync::beast_server_options bo;
  if (!parse_listen(listen, bo.host, bo.port)) {
    std::cerr << "--listen: '" << listen << "' is not HOST:PORT\n";
    return 2;
  }
  kullsync::log::set_level(log_level);
  auto lg = kullsync::log::get("server.main");

  // Signals are taken by sigwait below, on this thread only.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  caf::actor_system_config cfg;
  kullsync::server::add_server_types(cfg);
  cfg.set("logger.file-verbosity", caf::atom("quiet"));
  // Every handoff between threads costs a wake-up (a futex, a context switch):
  // more threads than cores only adds them. Measured on 2 cores with the
  // fan-out benchmark: 1 io thread + 1 worker does ~1.3x the deliveries per
  // CPU second of 1 + 2.
  if (workers == 0) {
    auto hw = std::max(1u, std::thread::hardware_concurrency());
    workers = hw > io_threads ? hw - io_threads : 1;
  }
  cfg.set("scheduler.max-threads", workers);
  // CAF's moderate polling sleeps 50 us at a time for 25 ms whenever a worker
  // runs dry: on a busy 2-core machine those wake-ups cost more CPU than the
  // messages. Blocking on the worker's condition variable costs one futex wake
  // per enqueue to a sleeping worker instead.
  if (idle_workers == "block")
    cfg.set("work-stealing.moderate-poll-attempts", size_t{0});
  caf::actor_system sys{cfg};

  kullsync::server::server_config sc;
  sc.admin_user = admin_user;
  sc.shards = shards;
  sc.max_sockets_per_user = max_sockets;
  sc.history.size = history_size;
  sc.history.ttl_ms = int64_t{history_ttl} * 1000;
  sc.history.memory_bytes = history_memory_mb << 20;
  sc.history.max_replay = max_replay;
  auto server = kullsync::server::spawn_sync_server(sys, sc);

  bo.io_threads = io_threads;
  bo.actors_on_io = actors_on_io == "on";
  bo.ping_interval = std::chrono::seconds{ping_interval};
  bo.handshake_timeout = std::chrono::seconds{handshake_timeout};
  bo.max_frame_bytes = max_frame;
  bo.max_queued_frames = max_queued_frames;
  bo.max_queued_bytes = max_queued_bytes;
  bo.max_http_body = max_http_body;
  kullsync::beast_server listener{sys, bo, server.acceptor, server.http_api};
  uint16_t port = 0;
  try {
    port = listener.start();
  } catch (const std::exception& e) {
    lg->critical("cannot listen on {}: {}", listen, e.what());
    server.stop();
    return 1;
  }
  // One machine-readable line, so scripts can use --listen HOST:0.
  std::printf("{\"listening\":\"%s:%u\"}\n", bo.host.c_str(), port);
  std::fflush(stdout);

  int sig = 0;
  sigwait(&signals, &sig);
  lg->info("{}: closing every socket with 1001 and stopping",
           sig == SIGINT ? "SIGINT" : "SIGTERM");
  auto hubs = server.stats(sys); // while the histories are still there
  listener.stop(std::chrono::seconds{3});
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
