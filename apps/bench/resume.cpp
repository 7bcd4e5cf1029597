// kullsync-resume: v2 resumes made of real client engines.
//
//   kullsync-resume --url ws://HOST:PORT/ws [--clients 5000] [--missed 20]
//                   [--io-threads 2] [--timeout 120]
//                   [--writer-url URL] [--resume-url URL] [--kill PID]
//
// Each URL option may be repeated (one server under several loopback
// addresses): user i's engine takes the (i mod n)-th, so that one host's
// thousands of connects do not all search one address's ephemeral ports
// (see kullsync-storm).
//
// Each of N users has two engines: a reader, which connects and then goes
// offline, and a writer, which stays and sends `missed` UPDATE_PROGRESS
// (each acknowledged: in the stream). Then every reader reconnects at once
// and resumes. Prints one JSON line: how many resumed without a snapshot,
// how many messages they were replayed, how many readers ended short of
// their user's last position (lost) and how many positions were dropped as
// duplicates or skipped (gaps); the time from the reconnect until each reader
// was live at its user's top (p50, p99, max); and the replay rate (messages
// replayed per second until the last reader was live). With --clients 1 and
// a large --missed it is the replay throughput into one socket.
//
// A cluster: writers may use another node (--writer-url) and readers resume
// on another one (--resume-url). With --kill PID the readers do not go
// offline: the node they are on (PID) is killed with SIGKILL while they are
// connected, they are sent to --resume-url (as a load balancer would) and
// the writers write meanwhile; the times then count from the kill. With
// --killed-by-caller the caller kills the node instead (several processes of
// readers share one node): each prints {"phase":"connected"} once its
// engines are up, and takes SIGUSR1, sent right after the kill, as the kill
// (the times count from the signal, a few milliseconds after the kill).
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <thread>
#include <unistd.h>
#include <vector>

#include <CLI/CLI.hpp>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>

#include "kullsync/version.hpp"
#include "kullsync/client/engine.hpp"
#include "kullsync/log.hpp"
#include "kullsync/server/server.hpp"
#include "kullsync/transports/beast_transport.hpp"
#include "percentile.hpp"

using namespace kullsync;
using clk = std::chrono::steady_clock;

namespace {

/// What one engine last published.
struct engine_view {
  connection_state state = connection_state::disconnected;
  std::string protocol;
  stream_status stream;
  int64_t processed = -1; // of the writer's shoot
  uint64_t target = 0;    // readers: the top to reach
  bool live = false;      // reached it
  clk::time_point live_at;
  clk::time_point moved_at; // when it last became connected or moved on
};

struct board {
  std::mutex mtx;
  std::vector<engine_view> readers, writers;
};

double ms(clk::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

client_engine spawn(caf::actor_system& sys, const std::string& url, const std::string& user,
                    const std::string& device, client_io io, board& b,
                    std::vector<engine_view>& views, size_t i, size_t outbox) {
  client_config cc;
  cc.connection.url = url;
  cc.connection.user_id = user;
  cc.connection.device_id = device;
  cc.connection.offline_queue_limit = outbox;
  beast_transport_options bo;
  bo.io = std::move(io);
  auto e = spawn_client(sys, cc, spawn_beast_transport(sys, bo));
  e.subscribe(make_state_callback(sys, [&b, &views, i](const sync_state& s) {
    std::lock_guard<std::mutex> guard{b.mtx};
    auto& v = views[i];
    if (s.connection.state != v.state || s.stream.seq != v.stream.seq)
      v.moved_at = clk::now();
    v.state = s.connection.state;
    v.protocol = s.connection.protocol;
    v.stream = s.stream;
    auto shoot = s.shoots.find("resume");
    v.processed = shoot == s.shoots.end() ? -1 : shoot->second.processed_count;
    if (!v.live && v.target > 0 && v.state == connection_state::connected
        && v.stream.seq >= v.target) {
      v.live = true;
      v.live_at = clk::now();
    }
  }));
  return e;
}

} // namespace

int main(int argc, char** argv) {
  CLI::App app{"kullsync-resume: N v2 readers resume at once after missing M messages each"};
  app.set_version_flag("--version", std::string{"kullsync-resume "} + kullsync::version);
  std::vector<std::string> urls;
  size_t clients = 5000, missed = 20, io_threads = 2;
  double timeout_s = 120;
  app.add_option("--url", urls, "ws://HOST:PORT/ws of the server (repeatable)")->required();
  app.add_option("--clients", clients, "readers (one user each, with one writer)")
    ->check(CLI::Range(1, 100000));
  app.add_option("--missed", missed, "messages each reader misses")->check(CLI::Range(1, 10000000));
  app.add_option("--io-threads", io_threads, "socket threads shared by all engines")
    ->check(CLI::Range(1, 64));
  app.add_option("--timeout", timeout_s, "seconds to wait for each phase");
  std::vector<std::string> writer_urls, resume_urls;
  int kill_pid = 0;
  app.add_option("--writer-url", writer_urls, "the writers' server (default: --url; repeatable)");
  app.add_option("--resume-url", resume_urls,
                 "where readers come back (default: --url; repeatable)");
  app.add_option("--kill", kill_pid,
                 "the readers' node: killed (SIGKILL) instead of the readers going offline")
    ->check(CLI::Range(2, 1 << 22));
  bool killed_by_caller = false;
  app.add_flag("--killed-by-caller", killed_by_caller,
               "the caller kills the readers' node and then sends SIGUSR1: the readers go "
               "to --resume-url from then on")
    ->excludes("--kill");
  CLI11_PARSE(app, argc, argv);
  // Blocked before any thread starts, so that every thread inherits it and
  // sigwait below takes the signal.
  sigset_t usr1;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  if (killed_by_caller)
    pthread_sigmask(SIG_BLOCK, &usr1, nullptr);
  const bool failover = kill_pid != 0 || killed_by_caller;
  if (writer_urls.empty())
    writer_urls = urls;
  if (resume_urls.empty())
    resume_urls = urls;
  auto pick = [](const std::vector<std::string>& xs, size_t i) -> const std::string& {
    return xs[i % xs.size()];
  };

  // Before the actor system: the engines' callbacks write to it until the
  // system (destroyed first) has stopped them.
  board b;
  caf::actor_system_config cfg;
  server::add_server_types(cfg);
  cfg.set("logger.file-verbosity", caf::atom("quiet"));
  caf::actor_system sys{cfg};
  log::set_level("warn");

  auto io = make_client_io(io_threads);
  b.readers.resize(clients);
  b.writers.resize(clients);
  std::vector<client_engine> readers, writers;
  for (size_t i = 0; i < clients; ++i) {
    // Users of this run only: a server keeps what earlier runs left.
    auto user = "resume-" + std::to_string(::getpid()) + "-u" + std::to_string(i);
    readers.push_back(spawn(sys, pick(urls, i), user, "reader", io, b, b.readers, i, 256));
    writers.push_back(
      spawn(sys, pick(writer_urls, i), user, "writer", io, b, b.writers, i, 1000));
  }
  auto wait_until = [&](auto pred) {
    auto deadline = clk::now() + std::chrono::duration<double>(timeout_s);
    while (clk::now() < deadline) {
      {
        std::lock_guard<std::mutex> guard{b.mtx};
        if (pred())
          return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds{20});
    }
    return false;
  };
  auto all = [](const std::vector<engine_view>& vs, auto pred) {
    return std::all_of(vs.begin(), vs.end(), pred);
  };
  auto phase = [&](const char* name, bool ok) {
    if (!ok) {
      std::fprintf(stderr, "kullsync-resume: %s did not complete within %.0f s\n", name,
                   timeout_s);
      std::exit(1);
    }
  };
  for (auto& e : readers)
    e.connect();
  for (auto& e : writers)
    e.connect();
  auto v2_up = [](const engine_view& v) {
    return v.state == connection_state::connected && v.protocol == "kull.v2";
  };
  phase("connecting", wait_until([&] { return all(b.readers, v2_up) && all(b.writers, v2_up); }));
  if (killed_by_caller) {
    std::printf("{\"phase\":\"connected\"}\n");
    std::fflush(stdout);
    // The caller may die instead: then give up after --timeout.
    timespec limit{static_cast<time_t>(timeout_s), 0};
    if (sigtimedwait(&usr1, nullptr, &limit) != SIGUSR1) {
      std::fprintf(stderr, "kullsync-resume: no SIGUSR1 within %.0f s\n", timeout_s);
      return 1;
    }
  }
  auto t0 = clk::now();
  if (failover) {
    // The readers' node dies under them; the balancer sends them elsewhere.
    if (kill_pid != 0)
      ::kill(kill_pid, SIGKILL);
    for (size_t i = 0; i < readers.size(); ++i)
      readers[i].set_endpoint(pick(resume_urls, i));
  } else {
    for (auto& e : readers)
      e.disconnect();
    phase("going offline", wait_until([&] {
      return all(b.readers, [](auto& v) { return v.state == connection_state::disconnected; });
    }));
  }
  // In rounds of at most `window` per writer, each acknowledged (hence in
  // the stream) and seen by the writer before the next: a writer is a
  // client too, and one that does not keep up is cut as a slow consumer.
  constexpr size_t window = 500;
  for (size_t done = 0; done < missed;) {
    auto upto = std::min(missed, done + window);
    for (size_t i = 0; i < clients; ++i)
      for (size_t k = done + 1; k <= upto; ++k) {
        msg::shoot_progress p;
        p.shoot_id = "resume";
        p.status = msg::shoot_status::processing;
        p.processed_count = static_cast<int64_t>(k);
        p.total_count = static_cast<int64_t>(missed);
        p.provider = "bench";
        writers[i].send_progress(p);
      }
    phase("writing", wait_until([&] {
      return all(b.writers, [&](auto& v) {
        return v.stream.outbox == 0 && v.processed == static_cast<int64_t>(upto);
      });
    }));
    done = upto;
  }
  {
    std::lock_guard<std::mutex> guard{b.mtx};
    for (size_t i = 0; i < clients; ++i) {
      auto& v = b.readers[i];
      v.target = b.writers[i].stream.seq;
      // A reader that got there while the writers finished (a failover:
      // it was back before the last write) was live when it last moved.
      if (v.state == connection_state::connected && v.stream.seq >= v.target) {
        v.live = true;
        v.live_at = v.moved_at;
      }
    }
  }
  if (!failover) {
    t0 = clk::now();
    for (size_t i = 0; i < readers.size(); ++i) {
      readers[i].set_endpoint(pick(resume_urls, i));
      readers[i].connect();
    }
  }
  wait_until([&] { return all(b.readers, [](auto& v) { return v.live; }); });

  std::unique_lock<std::mutex> guard{b.mtx};
  size_t resumed = 0, lost = 0, wrong_state = 0;
  uint64_t replayed = 0, duplicates = 0, gaps = 0;
  std::vector<double> live_ms;
  for (auto& v : b.readers) {
    resumed += v.stream.recovered ? 1 : 0;
    replayed += v.stream.recovered ? v.stream.replayed : 0;
    duplicates += v.stream.duplicates;
    gaps += v.stream.gaps;
    lost += v.live ? 0 : 1;
    wrong_state += v.processed == static_cast<int64_t>(missed) ? 0 : 1;
    if (v.live)
      live_ms.push_back(ms(v.live_at - t0));
  }
  std::sort(live_ms.begin(), live_ms.end());
  using kullsync::bench::percentile;
  auto last_s = percentile(live_ms, 1.0) / 1000;
  std::printf("{\"mode\":\"%s\",\"clients\":%zu,\"missed\":%zu,\"resumed\":%zu,"
              "\"replayed\":%llu,\"lost\":%zu,\"wrong_state\":%zu,\"duplicates\":%llu,"
              "\"gaps\":%llu,\"live_p50_ms\":%.1f,\"live_p99_ms\":%.1f,\"live_max_ms\":%.1f,"
              "\"replay_msgs_per_s\":%.0f}\n",
              failover ? "failover" : "resume", clients, missed, resumed, static_cast<unsigned long long>(replayed), lost,
              wrong_state, static_cast<unsigned long long>(duplicates),
              static_cast<unsigned long long>(gaps), percentile(live_ms, 0.5),
              percentile(live_ms, 0.99), percentile(live_ms, 1.0),
              last_s > 0 ? replayed / last_s : 0.0);
  std::fflush(stdout);
  guard.unlock(); // the callbacks take it while the engines stop
  for (auto& e : readers)
    e.stop();
  for (auto& e : writers)
    e.stop();
  return lost == 0 && wrong_state == 0 && resumed == clients ? 0 : 1;
}
