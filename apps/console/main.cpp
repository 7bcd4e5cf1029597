// kullsync-console: a live view of one user's sync state.
#include <atomic>
#include <condition_variable>
#include <csignal>
#include <iostream>
#include <mutex>
#include <thread>
#include <unistd.h>

#include <CLI/CLI.hpp>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>

#include "demo.hpp"
#include "local_state.hpp"
#include "kullsync/version.hpp"
#include "kullsync/client/caf_types.hpp"
#include "kullsync/client/engine.hpp"
#include "kullsync/client/store.hpp"
#include "kullsync/log.hpp"
#include "kullsync/server/server.hpp"
#include "kullsync/transports/beast_transport.hpp"
#include "kullsync/transports/http_client.hpp"
#include "view.hpp"
#include "../shared/cli_checks.hpp"

using kullsync::app::finite_range;

using namespace kullsync;
using namespace std::chrono_literals;

namespace {

std::atomic<bool> interrupted{false};

/// The newest state, handed from a CAF worker to the main thread.
class mailbox {
public:
  void put(const sync_state& s) {
    {
      std::lock_guard<std::mutex> g{m_};
      s_ = s;
      fresh_ = true;
    }
    cv_.notify_one();
  }
  /// Waits up to `d` for a new state; returns it if there is one.
  std::optional<sync_state> take(std::chrono::milliseconds d) {
    std::unique_lock<std::mutex> g{m_};
    cv_.wait_for(g, d, [this] { return fresh_; });
    if (!fresh_)
      return std::nullopt;
    fresh_ = false;
    return s_;
  }

private:
  std::mutex m_;
  std::condition_variable cv_;
  sync_state s_;
  bool fresh_ = false;
};

const char* env_names[] = {"dev", "staging", "prod"};

} // namespace

int main(int argc, char** argv) {
  CLI::App app{"kullsync-console: live shoots, credits and devices of a Kull user"};
  app.set_version_flag("--version", std::string{"kullsync-console "} + kullsync::version);
  std::string url, env, user = "demo-user", device, log_level = "warn";
  std::string store_file;
  bool json = false, demo_mode = false, insecure = false, no_store = false;
  double demo_seconds = 0;
  auto* url_opt = app.add_option("--url", url, "ws:// or wss:// endpoint")
                    ->envname("KULLSYNC_URL");
  app.add_option("--env", env, "dev | staging | prod")
    ->envname("KULLSYNC_ENV")->check(CLI::IsMember({"dev", "staging", "prod"}))
    ->excludes(url_opt);
  app.add_option("--user", user, "user id")->envname("KULLSYNC_USER")->capture_default_str();
  app.add_option("--device", device, "device id (default: generated once and kept)")
    ->envname("KULLSYNC_DEVICE");
  app.add_flag("--json", json, "one JSON object per line on stdout at each state change");
  app.add_flag("--demo", demo_mode, "run an embedded server and a simulated backend");
  app.add_option("--demo-seconds", demo_seconds, "stop after this many seconds (0: never)")
    ->check(finite_range(0.0, 86400.0));
  app.add_option("--store", store_file,
                 "where the v2 stream position and unacknowledged messages are kept "
                 "(default: $XDG_STATE_HOME/kullsync/<user>@<url>.json)")
    ->envname("KULLSYNC_STORE");
  app.add_flag("--no-store", no_store, "keep the stream position in memory only");
  app.add_flag("--insecure", insecure, "do not verify TLS certificates (development only)");
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error|off (stderr)")
    ->envname("KULLSYNC_LOG_LEVEL")
    ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return 2; // a usage error (CLI11's own codes vary)
  }
  if (user.empty() || user.find(':') != std::string::npos) {
    std::cerr << "--user: must be non-empty and contain no ':'\n";
    return 2;
  }
  log::set_level(log_level);
  if (device.empty())
    device = console::persistent_device_id();

  caf::actor_system_config cfg;
  add_client_types(cfg);
  server::add_server_types(cfg); // --demo embeds the server
  cfg.set("logger.file-verbosity", caf::atom("quiet"));
  // Before the actor system: the state callback writes to it until the
  // system has ended every actor.
  mailbox box;
  caf::actor_system sys{cfg};

  std::unique_ptr<console::demo> demo;
  if (demo_mode) {
    demo = std::make_unique<console::demo>(sys, user);
    url = demo->url();
    env = "demo";
  } else if (url.empty()) {
    if (env.empty())
      env = "dev";
    url = *environment_url(env);
  } else {
    env = "custom";
  }
  if (url.rfind("ws://", 0) != 0 && url.rfind("wss://", 0) != 0) {
    std::cerr << "--url: '" << url << "' is not a ws:// or wss:// URL\n";
    return 2;
  }

  client_config cc;
  cc.connection.url = url;
  cc.connection.user_id = user;
  cc.connection.device_id = device;
  // The demo's embedded server starts a new stream each run: nothing to keep.
  if (!no_store && !(demo && store_file.empty())) {
    if (store_file.empty())
      store_file = console::stream_store_path(user, url);
    if (!store_file.empty())
      cc.store = make_file_store(store_file);
  }
  beast_transport_options to;
  to.insecure = insecure;
  auto engine = spawn_client(sys, cc, spawn_beast_transport(sys, to),
                             spawn_http_client(sys, to));
  engine.subscribe(make_state_callback(sys, [&box](const sync_state& s) { box.put(s); }));
  engine.connect();
  if (demo)
    demo->start_backend();

  std::signal(SIGINT, [](int) { interrupted = true; });
  std::signal(SIGTERM, [](int) { interrupted = true; });
  auto deadline = demo_seconds > 0
                    ? std::chrono::steady_clock::now()
                        + std::chrono::milliseconds(static_cast<int64_t>(demo_seconds * 1000))
                    : std::chrono::steady_clock::time_point::max();
  bool tui = !json && isatty(STDOUT_FILENO) && isatty(STDIN_FILENO);
  sync_state current;
  console::view_clock clock;
  console::screen_info info{url, env, user, device};
  std::unique_ptr<console::dashboard> dash;
  if (tui)
    dash = std::make_unique<console::dashboard>();
  int env_index = 0;
  while (!interrupted && std::chrono::steady_clock::now() < deadline) {
    bool changed = false;
    if (auto s = box.take(tui ? 0ms : 200ms)) {
      clock.update(current, *s);
      current = std::move(*s);
      changed = true;
    }
    if (!tui) {
      if (changed)
        std::cout << (json ? console::json_line(current, clock)
                           : console::plain_line(current, clock))
                  << std::endl;
      continue;
    }
    dash->draw(current, clock, info);
    int k = dash->key(200ms);
    if (k == 'q' || k == 'Q')
      break;
    if (k == 'r' || k == 'R') {
      engine.connect();
      engine.network_changed();
    }
    if ((k == 'e' || k == 'E') && !demo) {
      env_index = (env_index + 1) % 3;
      info.env = env_names[env_index];
      info.endpoint = *environment_url(info.env);
      engine.set_endpoint(info.endpoint);
    }
  }
  dash.reset();
  engine.stop(); // closes the link: the server hears 1000, not a lost socket
  engine.await_stop(sys);
  demo.reset();
  return 0;
}
