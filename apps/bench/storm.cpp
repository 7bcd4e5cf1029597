// kullsync-storm: a reconnect storm made of real client engines.
//
//   kullsync-storm --url ws://HOST:PORT/ws [--url ...] --clients 5000
//                  [--users 1000] [--jitter 0.5] [--io-threads 2] [--timeout 120]
//
// Several --url (the same server under other loopback addresses, e.g. a
// server on 0.0.0.0 reached at 127.0.0.1, 127.0.0.2, ...) spread the
// engines over them: client i dials url i mod n. Thousands of connects to
// one address and port from one host make the kernel search long for a
// free ephemeral port (`__inet_check_established`), a cost of the one
// generating host that real devices, each with its own address, do not pay.
//
// Connects N kullsync client engines (reconnect policy, keepalive and all),
// prints {"phase":"connected",...} once every one is connected, then waits
// while the caller restarts the server. Once every client that lost its link
// is connected again (or --timeout passes) it prints one JSON line: how many
// lost the link, how many came back (`back_v2`: on v2), when (ms after the
// first loss: p50, p99, max), how the first retries spread (their dial times
// after the loss), and how many gave up.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <optional>
#include <thread>
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
#include "../shared/cli_checks.hpp"

using kullsync::app::finite_range;

using namespace kullsync;
using clk = std::chrono::steady_clock;

namespace {

struct client_track {
  bool connected_once = false;
  bool lost = false;
  bool back = false;
  bool failed = false;
  clk::time_point lost_at, first_redial_at, back_at;
  bool redialed = false;
};

struct storm_state {
  std::mutex mtx;
  std::vector<client_track> clients;
  size_t connected = 0;
  size_t lost = 0, back = 0, back_v2 = 0, failed = 0;
  std::optional<clk::time_point> first_loss;

  void on_status(size_t i, const connection_status& s) {
    std::lock_guard<std::mutex> guard{mtx};
    auto& c = clients[i];
    auto now = clk::now();
    switch (s.state) {
      case connection_state::connected:
        if (!c.connected_once) {
          c.connected_once = true;
          ++connected;
        } else if (c.lost && !c.back) {
          c.back = true;
          c.back_at = now;
          ++back;
          back_v2 += s.protocol == "kull.v2" ? 1 : 0;
        }
        break;
      case connection_state::reconnecting:
        if (c.connected_once && !c.lost) {
          c.lost = true;
          c.lost_at = now;
          ++lost;
          if (!first_loss)
            first_loss = now;
        }
        break;
      case connection_state::connecting:
        if (c.lost && !c.redialed) {
          c.redialed = true;
          c.first_redial_at = now;
        }
        break;
      case connection_state::failed:
        if (!c.failed) {
          c.failed = true;
          ++failed;
        }
        break;
      default:
        break;
    }
  }
};

double ms(clk::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

} // namespace

int main(int argc, char** argv) {
  CLI::App app{"kullsync-storm: N client engines through a server restart"};
  app.set_version_flag("--version", std::string{"kullsync-storm "} + kullsync::version);
  std::vector<std::string> urls;
  size_t clients = 5000, users = 1000, io_threads = 2;
  double jitter = 0.5, timeout_s = 120;
  app.add_option("--url", urls, "ws://HOST:PORT/ws of the server (repeat: engines spread over them)")
    ->required();
  app.add_option("--clients", clients, "client engines")->check(CLI::Range(1, 100000));
  app.add_option("--users", users, "users they belong to (clients spread over them)")
    ->check(CLI::Range(1, 100000));
  app.add_option("--jitter", jitter, "reconnect jitter: each delay times [1-j, 1+j]")
    ->check(finite_range(0.0, 1.0));
  app.add_option("--io-threads", io_threads, "socket threads shared by all clients")
    ->check(CLI::Range(1, 64));
  app.add_option("--timeout", timeout_s, "seconds to wait for each phase");
  CLI11_PARSE(app, argc, argv);

  // Before the actor system: the engines' callbacks write to it until the
  // system (destroyed first) has stopped them.
  storm_state st;
  caf::actor_system_config cfg;
  server::add_server_types(cfg);
  cfg.set("logger.file-verbosity", caf::atom("quiet"));
  caf::actor_system sys{cfg};
  log::set_level("warn");

  auto io = make_client_io(io_threads);
  st.clients.resize(clients);
  std::vector<client_engine> engines;
  engines.reserve(clients);
  for (size_t i = 0; i < clients; ++i) {
    client_config cc;
    cc.connection.url = urls[i % urls.size()];
    cc.connection.user_id = "storm-u" + std::to_string(i % users);
    cc.connection.device_id = "storm-d" + std::to_string(i);
    cc.reconnect.jitter = jitter;
    beast_transport_options bo;
    bo.io = io;
    auto e = spawn_client(sys, cc, spawn_beast_transport(sys, bo));
    e.subscribe(make_status_callback(sys, [&st, i](const connection_status& s) {
      st.on_status(i, s);
    }));
    e.connect();
    engines.push_back(e);
  }

  auto wait_until = [&](auto pred) {
    auto deadline = clk::now() + std::chrono::duration<double>(timeout_s);
    while (clk::now() < deadline) {
      {
        std::lock_guard<std::mutex> guard{st.mtx};
        if (pred())
          return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds{50});
    }
    return false;
  };
  auto t_start = clk::now();
  bool all_in = wait_until([&] { return st.connected == clients; });
  {
    std::lock_guard<std::mutex> guard{st.mtx};
    std::printf("{\"phase\":\"connected\",\"clients\":%zu,\"connected\":%zu,\"ms\":%.0f}\n",
                clients, st.connected, ms(clk::now() - t_start));
    std::fflush(stdout);
  }
  if (!all_in)
    return 1;
  // The caller restarts the server now: wait for the losses, then the returns.
  wait_until([&] { return st.lost > 0; });
  wait_until([&] { return st.lost == clients && st.back + st.failed == st.lost; });

  std::unique_lock<std::mutex> guard{st.mtx};
  std::vector<double> back_ms, redial_ms;
  for (auto& c : st.clients) {
    if (c.back)
      back_ms.push_back(ms(c.back_at - *st.first_loss));
    if (c.redialed)
      redial_ms.push_back(ms(c.first_redial_at - c.lost_at));
  }
  std::sort(back_ms.begin(), back_ms.end());
  std::sort(redial_ms.begin(), redial_ms.end());
  using bench::percentile;
  std::printf("{\"mode\":\"storm\",\"clients\":%zu,\"jitter\":%.2f,\"lost\":%zu,\"back\":%zu,"
              "\"back_v2\":%zu,\"failed\":%zu,\"back_p50_ms\":%.0f,\"back_p99_ms\":%.0f,\"back_max_ms\":%.0f,"
              "\"first_retry_min_ms\":%.0f,\"first_retry_p50_ms\":%.0f,"
              "\"first_retry_max_ms\":%.0f}\n",
              clients, jitter, st.lost, st.back, st.back_v2, st.failed, percentile(back_ms, 0.5),
              percentile(back_ms, 0.99), percentile(back_ms, 1.0), percentile(redial_ms, 0.0),
              percentile(redial_ms, 0.5), percentile(redial_ms, 1.0));
  std::fflush(stdout);
  bool all_back = st.back == clients;
  guard.unlock(); // the callbacks take it while the engines stop
  for (auto& e : engines)
    e.stop();
  return all_back ? 0 : 1;
}
