#include "demo.hpp"

#include <chrono>
#include <cstdio>
#include <vector>

#include <caf/actor_system.hpp>

#include "kullsync/client/engine.hpp"
#include "kullsync/log.hpp"
#include "kullsync/messages/codec.hpp"
#include "kullsync/transports/beast_transport.hpp"
#include "kullsync/transports/http_client.hpp"

namespace kullsync::console {

namespace {

using namespace std::chrono_literals;

struct sim_shoot {
  std::string id;
  std::string provider;
  int total;
  double speed;        // images per second
  int fail_at = -1;    // fails at this count, if >= 0
  double done = 0;
  bool over = false;
};

std::vector<sim_shoot> first_shoots() {
  return {{"wedding-0412", "anthropic", 240, 9.0},
          {"portrait-77", "openai", 60, 2.5},
          {"landscape-9", "gemini", 150, 5.0, 48},
          {"event-2026-11", "openai", 400, 14.0}};
}

} // namespace

demo::demo(caf::actor_system& sys, std::string user)
  : sys_(sys), user_(std::move(user)) {
  server::server_config sc;
  sc.shards = 2;
  server_ = server::spawn_sync_server(sys_, sc);
  beast_server_options bo;
  bo.host = "127.0.0.1";
  bo.port = 0;
  listener_ = std::make_unique<beast_server>(sys_, bo, server_.acceptor,
                                             server_.http_api);
  auto port = listener_->start();
  url_ = "ws://127.0.0.1:" + std::to_string(port) + "/ws";
  http_ = "http://127.0.0.1:" + std::to_string(port) + "/api/sync";
}

demo::~demo() {
  stop_ = true;
  if (backend_.joinable())
    backend_.join();
  listener_->stop(std::chrono::milliseconds{500});
  server_.stop();
}

void demo::start_backend() {
  backend_ = std::thread{[this] { run_backend(); }};
}

void demo::run_backend() {
  auto lg = log::get("console.demo");
  auto post = [&](const std::string& path, const std::string& body) {
    auto r = http_fetch("POST", http_ + path, body, 2s);
    if (r.status != 200)
      lg->warn("demo backend: POST {} -> {} {}", path, r.status,
               r.error.empty() ? r.body : r.error);
  };
  auto shoots = first_shoots();
  int64_t credits = 5000;
  post("/credit-update", R"({"userId":")" + user_ + R"(","newBalance":5000,"change":5000,"reason":"welcome bonus"})");
  // A second device of the same user comes and goes.
  client_config other;
  other.connection.url = url_;
  other.connection.user_id = user_;
  other.connection.device_id = "ipad-pro-demo";
  auto ipad = spawn_client(sys_, other, spawn_beast_transport(sys_));
  const auto tick = 250ms;
  int n = 0;
  int round = 0;
  for (; !stop_; ++n) {
    std::this_thread::sleep_for(tick);
    if (n == 12)
      ipad.connect();
    if (n == 60)
      ipad.disconnect();
    if (n == 24)
      post("/prompt-change", R"({"promptId":"culling-style-v2","action":"updated","userIds":[")"
                               + user_ + R"("]})");
    if (n % 80 == 40) {
      credits += 500;
      post("/credit-update", R"({"userId":")" + user_ + R"(","newBalance":)"
                               + std::to_string(credits)
                               + R"(,"change":500,"reason":"top-up"})");
    }
    bool all_over = true;
    for (auto& s : shoots) {
      if (s.over)
        continue;
      all_over = false;
      auto before = static_cast<int>(s.done);
      s.done = std::min<double>(s.total, s.done + s.speed * 0.25);
      int count = static_cast<int>(s.done);
      msg::shoot_progress p;
      p.shoot_id = s.id;
      p.provider = s.provider;
      p.total_count = s.total;
      p.processed_count = count;
      p.status = msg::shoot_status::processing;
      char img[32];
      std::snprintf(img, sizeof(img), "IMG_%04d.CR3", count + 1);
      p.current_image = img;
      p.eta = (s.total - s.done) / s.speed;
      if (s.fail_at >= 0 && count >= s.fail_at) {
        p.status = msg::shoot_status::failed;
        p.processed_count = s.fail_at;
        p.error_message = "Provider rate limit exceeded (429) after 3 retries";
        p.eta.reset();
        s.over = true;
      } else if (count >= s.total) {
        p.status = msg::shoot_status::completed;
        p.current_image.reset();
        p.eta.reset();
        s.over = true;
      }
      auto text = msg::to_json(p);
      text.insert(1, R"("userId":")" + user_ + R"(",)");
      post("/shoot-progress", text);
      // Credits: one per processed image, charged in batches of ten.
      if (count / 10 > before / 10) {
        int charged = (count / 10 - before / 10) * 10;
        credits -= charged;
        post("/credit-update", R"({"userId":")" + user_ + R"(","newBalance":)"
                                 + std::to_string(credits) + R"(,"change":-)"
                                 + std::to_string(charged) + R"(,"reason":"processed )"
                                 + std::to_string(charged) + " images in " + s.id + R"("})");
      }
    }
    if (all_over) { // a new day of shoots
      ++round;
      shoots = first_shoots();
      for (auto& s : shoots)
        s.id += "-r" + std::to_string(round);
    }
  }
  ipad.stop();
}

} // namespace kullsync::console
