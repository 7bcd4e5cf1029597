// The engine with signed tokens against the real server actors (JWT mode)
// over the memory network, in virtual time: in-band refresh ahead of the
// expiry, a new token after 4003, and a stop on 4002.
#include <gtest/gtest.h>

#include <caf/exit_reason.hpp>
#include <caf/send.hpp>

#include "harness.hpp"
#include "kullsync/common/clock.hpp"
#include "kullsync/log.hpp"
#include "kullsync/server/server.hpp"
#include "sim_server.hpp"
#include "test_tokens.hpp"

using namespace kullsync;
using namespace kullsync::test;
using namespace std::chrono_literals;

namespace {

constexpr const char* url = "ws://sync.sim/ws";
const std::string secret = "a-shared-secret-of-at-least-32-bytes!!";

/// What the test's provider does and how often it was asked.
struct provider_script {
  int64_t ttl_s = 60;
  std::optional<int64_t> fixed_exp; // a cached token: the same expiry each time
  bool fail = false;
  std::string key = secret;
  int calls = 0;
};

class client_tokens : public ::testing::Test {
protected:
  /// The server takes tokens up to `leeway_ms` past their expiry.
  explicit client_tokens(int64_t leeway_ms = 0) {
    log::set_level("off");
    net_ = sim::spawn_sim_network(sim_.sys(), 1);
    server::server_config sc;
    sc.shards = 1;
    sc.node_epoch = "n1";
    server::auth_options ao;
    ao.hs256_secret = secret;
    ao.seed = 5;
    ao.leeway_ms = leeway_ms;
    sc.auth = server::make_authenticator(ao);
    server_.emplace(sim_, net_, url, sc);
  }

  ~client_tokens() override {
    for (auto& e : engines_)
      e.stop();
    if (provider_)
      caf::anon_send_exit(provider_, caf::exit_reason::user_shutdown);
    server_.reset();
    caf::anon_send_exit(net_, caf::exit_reason::user_shutdown);
    sim_.run();
  }

  /// A provider actor (scheduled, so the simulation stays deterministic)
  /// signing tokens for u1 that expire `ttl_s` from the virtual wall clock.
  token_provider_actor provider() {
    auto clock = make_wall_clock(sim_.sys(), sim_wall_start_ms);
    auto* script = &script_;
    provider_ = sim_.sys().spawn([=](token_provider_actor::pointer self)
                                   -> token_provider_actor::behavior_type {
      return {
        [=](token_atom) -> caf::result<std::string> {
          ++script->calls;
          if (script->fail)
            return caf::make_error(caf::sec::runtime_error, "auth backend down");
          auto exp = script->fixed_exp.value_or(epoch_ms(self->home_system(), clock) / 1000
                                                + script->ttl_s);
          return sign(R"({"sub":"u1","device":"mac","exp":)" + std::to_string(exp) + "}",
                      "HS256", script->key);
        },
      };
    });
    return provider_;
  }

  /// `clock_skew`: how far the device's clock is from the server's.
  client_engine engine(token_provider_actor tokens, std::string token = {},
                       http_client_actor http = {},
                       std::chrono::milliseconds clock_skew = {}) {
    client_config cc;
    cc.connection.url = url;
    cc.connection.user_id = "u1";
    cc.connection.device_id = "mac";
    cc.connection.token = std::move(token);
    cc.wall_start_ms = sim_wall_start_ms + clock_skew.count();
    auto e = spawn_client(sim_.sys(), cc, spawn_memory_transport(sim_.sys(), net_),
                          std::move(http), std::move(tokens));
    engines_.push_back(e);
    e.connect();
    sim_.run();
    return e;
  }

  connection_status status(const client_engine& e) {
    return sim_.ask<connection_status>(e.connection, get_atom::value);
  }

  server::server_counters& counters() { return *server_->handles().counters; }

  sim_system sim_;
  sim_network_actor net_;
  std::optional<sim_server> server_;
  provider_script script_;
  token_provider_actor provider_;
  std::vector<client_engine> engines_;
};

/// A server with --jwt-leeway 30.
class client_tokens_leeway : public client_tokens {
protected:
  client_tokens_leeway() : client_tokens(30'000) {}
};

} // namespace

TEST_F(client_tokens, refreshes_in_band_before_the_token_expires) {
  auto e = engine(provider());
  ASSERT_EQ(status(e).state, connection_state::connected);
  auto link = status(e).link;
  sim_.advance(10min);
  auto s = status(e);
  EXPECT_EQ(s.state, connection_state::connected);
  EXPECT_EQ(s.link, link) << "the link was never replaced";
  EXPECT_GE(counters().refreshes.load(), 10u);
  EXPECT_EQ(counters().expired_closes.load(), 0u);
  EXPECT_GE(script_.calls, 11);
}

// The expiry is the server's clock's: a device whose clock is minutes off
// still refreshes ahead of it, once per token, never after it (4003) nor in
// a loop.
TEST_F(client_tokens, refreshes_on_time_whatever_the_devices_clock_says) {
  auto tokens = provider();
  for (auto skew : {-5min, 5min}) {
    SCOPED_TRACE(skew.count() < 0 ? "the device's clock 5 min behind" : "5 min ahead");
    auto refreshes = counters().refreshes.load();
    auto calls = script_.calls;
    auto e = engine(tokens, {}, {}, skew);
    ASSERT_EQ(status(e).state, connection_state::connected);
    auto link = status(e).link;
    sim_.advance(10min);
    EXPECT_EQ(status(e).link, link) << "the link was replaced";
    EXPECT_EQ(counters().expired_closes.load(), 0u);
    // 60 s tokens refreshed at 80% of their time: 12 or 13 in 10 minutes.
    EXPECT_GE(counters().refreshes.load() - refreshes, 10u);
    EXPECT_LE(counters().refreshes.load() - refreshes, 14u);
    EXPECT_LE(script_.calls - calls, 15);
    e.stop();
    sim_.run();
  }
}

TEST_F(client_tokens, after_4003_gets_a_new_token_and_resumes) {
  auto e = engine(provider());
  auto link = status(e).link;
  script_.fail = true; // the refresh ahead of the expiry finds no token
  sim_.advance(55s);
  EXPECT_EQ(status(e).link, link);
  script_.fail = false;
  sim_.advance(20s); // the server closes it at the expiry: 4003
  EXPECT_EQ(counters().expired_closes.load(), 1u);
  auto s = status(e);
  EXPECT_EQ(s.state, connection_state::connected);
  EXPECT_EQ(s.link, link + 1) << "one redial, with a fresh token";
}

// With --jwt-leeway the server takes a token up to the leeway past its
// expiry; the socket it took stays open until then (not closed 4003 at the
// next sweep), and is closed 4003 once the leeway has passed too.
TEST_F(client_tokens_leeway, a_token_taken_within_it_is_closed_only_after_it) {
  auto clock = make_wall_clock(sim_.sys(), sim_wall_start_ms);
  auto exp = epoch_ms(sim_.sys(), clock) / 1000 - 10; // expired 10 s ago
  auto e = engine({}, sign(R"({"sub":"u1","device":"mac","exp":)" + std::to_string(exp) + "}",
                           "HS256", secret));
  ASSERT_EQ(status(e).state, connection_state::connected);
  sim_.advance(15s);
  EXPECT_EQ(counters().expired_closes.load(), 0u);
  EXPECT_EQ(status(e).state, connection_state::connected);
  sim_.advance(10s); // 30 s past the expiry
  EXPECT_EQ(counters().expired_closes.load(), 1u);
}

// A provider that hands out the token it cached until it expires: each
// REFRESH gains nothing, and asking again at once would REFRESH in a loop
// into the server's frame rate limit (4008). The engine waits between them.
TEST_F(client_tokens, a_refresh_that_gains_nothing_is_not_repeated_at_once) {
  auto clock = make_wall_clock(sim_.sys(), sim_wall_start_ms);
  script_.fixed_exp = epoch_ms(sim_.sys(), clock) / 1000 + 30;
  auto e = engine(provider());
  auto link = status(e).link;
  sim_.advance(25s); // refreshes from 20 s on, 10 s before the expiry
  EXPECT_EQ(status(e).link, link) << "not closed (4008) for a burst of REFRESHes";
  EXPECT_GE(counters().refreshes.load(), 1u);
  EXPECT_LE(counters().refreshes.load(), 3u);
}

TEST_F(client_tokens, a_failing_provider_is_a_failed_dial_with_backoff) {
  script_.fail = true;
  auto e = engine(provider());
  auto s = status(e);
  EXPECT_EQ(s.state, connection_state::reconnecting);
  EXPECT_NE(s.error.find("no token"), std::string::npos) << s.error;
  script_.fail = false;
  sim_.advance(2s);
  EXPECT_EQ(status(e).state, connection_state::connected);
}

TEST_F(client_tokens, an_invalid_token_stops_the_engine) {
  script_.key = secret + "-but-not-the-servers";
  auto e = engine(provider());
  EXPECT_EQ(status(e).state, connection_state::failed);
  EXPECT_EQ(status(e).error, "invalid token");
  sim_.advance(5min);
  EXPECT_EQ(script_.calls, 1) << "no retry with a token the server refused";
  auto link = status(e).link;
  e.network_changed(); // no reason to try the refused token again
  sim_.run();
  EXPECT_EQ(status(e).link, link) << "a network change redialed after 4002";
  EXPECT_EQ(status(e).state, connection_state::failed);
  // The application connects again (the user signed in anew): a new token.
  script_.key = secret;
  e.connect();
  sim_.run();
  EXPECT_EQ(script_.calls, 2);
  EXPECT_EQ(status(e).state, connection_state::connected);
}

// "The device id comes from the `device` claim, else the query parameter
// `device`": a token without the claim must not make every link a new
// device, or a message resent after a lost ACK would be applied twice.
TEST_F(client_tokens, a_token_without_a_device_claim_keeps_the_device_id) {
  auto exp = sim_wall_start_ms / 1000 + 3600;
  auto e = engine({}, sign(R"({"sub":"u1","exp":)" + std::to_string(exp) + "}", "HS256",
                           secret));
  ASSERT_EQ(status(e).state, connection_state::connected);
  auto devices = sim_.ask<sync_state>(e.coordinator, get_atom::value).devices;
  ASSERT_EQ(devices.size(), 1u);
  EXPECT_EQ(devices[0].device_id, "mac");
}

TEST_F(client_tokens, a_refused_static_token_is_not_sent_again) {
  auto e = engine({}, sign(R"({"sub":"u1","device":"mac"})", "HS256", secret + "-not-it"));
  EXPECT_EQ(status(e).state, connection_state::failed);
  EXPECT_EQ(status(e).error, "invalid token");
  auto link = status(e).link;
  e.network_changed();
  sim_.run();
  e.connect(); // without a provider there is no other token to dial with
  sim_.run();
  sim_.advance(5min);
  EXPECT_EQ(status(e).link, link) << "dialed again with the token the server refused";
  EXPECT_EQ(status(e).state, connection_state::failed);
}

TEST_F(client_tokens, an_expired_static_token_without_a_provider_fails) {
  auto exp = sim_wall_start_ms / 1000 - 10;
  auto e = engine({}, sign(R"({"sub":"u1","exp":)" + std::to_string(exp) + "}", "HS256",
                           secret));
  EXPECT_EQ(status(e).state, connection_state::failed);
  EXPECT_EQ(status(e).error, "token expired");
}

// The HTTP state call carries the token the engine dials with: with a
// provider, its signed token (the configured "user:device" is refused by a
// server with signed tokens). Before the provider gave one,
// there is nothing to ask with.
TEST_F(client_tokens, the_state_is_loaded_with_the_providers_token) {
  auto urls = std::make_shared<std::vector<std::string>>();
  auto http = sim_.sys().spawn([urls]() -> http_client_actor::behavior_type {
    return {[=](fetch_atom, const std::string&, const std::string& url, const std::string&) {
      urls->push_back(url);
      return http_result{401, R"({"error":"invalid token"})", {}};
    }};
  });
  auto e = engine(provider(), {}, http);
  ASSERT_EQ(status(e).state, connection_state::connected);
  EXPECT_TRUE(urls->empty()) << "loaded without a token: " << urls->front();
  e.disconnect();
  sim_.advance(std::chrono::seconds{6}); // down: reloaded at 5 s
  ASSERT_FALSE(urls->empty());
  for (auto& u : *urls) {
    EXPECT_EQ(u.find("token=u1"), std::string::npos) << u;
    EXPECT_NE(u.find("/api/sync/state?token=eyJ"), std::string::npos) << u;
  }
  caf::anon_send_exit(http, caf::exit_reason::user_shutdown);
}
