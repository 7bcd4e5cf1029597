// The Beast client transport on real loopback sockets: against our server,
// against a third-party server (Node ws, the legacy baseline), over TLS with
// a certificate made at test time, and with readable failure reasons.
#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>

#include "kullsync/client/engine.hpp"
#include "kullsync/server/server.hpp"
#include "kullsync/transports/beast_server.hpp"
#include "kullsync/transports/beast_transport.hpp"
#include "threaded_fixture.hpp"

using namespace kullsync;
using namespace std::chrono_literals;

namespace {

/// A child process whose first stdout line is {"listening":"HOST:PORT"}.
class child {
public:
  explicit child(std::vector<std::string> argv) {
    int fds[2];
    if (pipe(fds) != 0)
      throw std::runtime_error("pipe");
    pid_ = fork();
    if (pid_ == 0) {
      dup2(fds[1], 1);
      close(fds[0]);
      std::vector<char*> args;
      for (auto& a : argv)
        args.push_back(a.data());
      args.push_back(nullptr);
      execvp(args[0], args.data());
      _exit(127);
    }
    close(fds[1]);
    FILE* f = fdopen(fds[0], "r");
    char buf[256] = {0};
    if (fgets(buf, sizeof(buf), f) != nullptr)
      line_ = buf;
    fclose(f);
  }
  ~child() {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  /// "HOST:PORT" from the first line, or "" if it never came.
  std::string address() const {
    auto a = line_.find(":\"");
    auto b = line_.rfind('"');
    return a == std::string::npos || b <= a + 2 ? "" : line_.substr(a + 2, b - a - 2);
  }

private:
  pid_t pid_;
  std::string line_;
};

std::string sh(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  char buf[512];
  while (p && fgets(buf, sizeof(buf), p))
    out += buf;
  if (p)
    pclose(p);
  return out;
}

bool connected(const sync_state& s) {
  return s.connection.state == connection_state::connected && !s.devices.empty();
}

class beast_transport_test : public test::threaded_system_test {
protected:
  client_engine engine_to(const std::string& url, beast_transport_options opts = {},
                          bool header_token = false) {
    client_config cc;
    cc.connection.url = url;
    cc.connection.user_id = "u1";
    cc.connection.device_id = "cpp";
    cc.connection.token_in_header = header_token;
    cc.reconnect.delays = {200ms};
    auto e = spawn_client(sys_, cc, spawn_beast_transport(sys_, opts));
    engines_.push_back(e);
    e.connect();
    return e;
  }

  sync_state state(const client_engine& e) {
    caf::scoped_actor self{sys_};
    sync_state s;
    self->request(e.coordinator, caf::infinite, get_atom::value)
      .receive([&](const sync_state& x) { s = x; }, [](caf::error&) {});
    return s;
  }

  template <class Pred>
  sync_state wait_for(const client_engine& e, Pred pred, std::chrono::seconds t = 10s) {
    auto deadline = std::chrono::steady_clock::now() + t;
    sync_state s;
    while (std::chrono::steady_clock::now() < deadline) {
      s = state(e);
      if (pred(s))
        return s;
      std::this_thread::sleep_for(20ms);
    }
    ADD_FAILURE() << "timed out; connection " << to_string(s.connection.state)
                  << ": " << s.connection.error;
    return s;
  }

  void TearDown() override {
    for (auto& e : engines_)
      e.stop();
  }

  /// Sends progress for `shoot` and waits until it is in the stream and
  /// acknowledged.
  sync_state progress_roundtrip(const client_engine& e, const std::string& shoot,
                                int64_t done, int64_t total) {
    msg::shoot_progress p;
    p.shoot_id = shoot;
    p.status = msg::shoot_status::processing;
    p.processed_count = done;
    p.total_count = total;
    e.send_progress(p);
    return wait_for(e, [shoot](const sync_state& s) {
      return s.shoots.count(shoot) == 1 && s.stream.outbox == 0;
    });
  }

  /// Our server on 127.0.0.1 and a free port, stopped when it goes.
  struct our_server {
    our_server(caf::actor_system& sys, beast_server_options bo)
      : srv(server::spawn_sync_server(sys, {})),
        listener(sys, on_loopback(bo), srv.acceptor, srv.http_api),
        url("ws://127.0.0.1:" + std::to_string(listener.start())) {
      // nop
    }
    ~our_server() {
      listener.stop(1s);
      srv.stop();
    }
    static beast_server_options on_loopback(beast_server_options bo) {
      bo.host = "127.0.0.1";
      bo.port = 0; // a free one
      return bo;
    }
    server::sync_server srv;
    beast_server listener;
    std::string url; // ws://127.0.0.1:PORT, without a path
  };

  /// A progress update from one engine comes back through the real server;
  /// a second device then joins. Returns the actor turns run on the io thread.
  uint64_t roundtrip_through_our_server(beast_server_options bo) {
    auto srv = server::spawn_sync_server(sys_, {});
    bo.host = "127.0.0.1";
    bo.port = 0;
    beast_server listener{sys_, bo, srv.acceptor, srv.http_api};
    auto port = listener.start();
    auto e = engine_to("ws://127.0.0.1:" + std::to_string(port) + "/ws");
    EXPECT_EQ(wait_for(e, connected).connection.protocol, "kull.v2");
    auto s = progress_roundtrip(e, "roundtrip", 2, 8);
    EXPECT_DOUBLE_EQ(s.shoots["roundtrip"].progress(), 0.25);
    EXPECT_EQ(s.stream.seq, 1u);
    EXPECT_FALSE(s.stream.epoch.empty());
    auto h = engine_to("ws://127.0.0.1:" + std::to_string(port) + "/ws", {}, true);
    wait_for(h, connected);
    e.stop();
    h.stop();
    listener.stop(1s);
    srv.stop();
    return listener.stats().actor_turns_on_io;
  }

  std::vector<client_engine> engines_;
};

} // namespace

TEST_F(beast_transport_test, talks_to_our_server) {
  auto turns = roundtrip_through_our_server({});
  // By default the server's sessions and hub run on the io thread.
  EXPECT_GT(turns, 0u);
}

TEST_F(beast_transport_test, talks_to_our_server_with_two_io_threads) {
  beast_server_options bo;
  bo.io_threads = 2; // turns of the same actors on either io thread
  EXPECT_GT(roundtrip_through_our_server(bo), 0u);
}

TEST_F(beast_transport_test, talks_to_our_server_with_its_actors_on_caf_threads) {
  beast_server_options bo;
  bo.actors_on_io = false;
  EXPECT_EQ(roundtrip_through_our_server(bo), 0u);
}

// stop() closes the link as a WebSocket close (1000) before the engine
// ends: the server sees a device leave, not a lost socket (1006).
TEST_F(beast_transport_test, a_stopped_engine_closes_its_socket_with_1000) {
  our_server ours{sys_, {}};
  auto& srv = ours.srv;
  auto e = engine_to(ours.url + "/ws");
  wait_for(e, connected);
  e.stop();
  e.await_stop(sys_);
  auto& closes = srv.counters->closes;
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (closes[0].load() + closes[3].load() == 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(10ms);
  static_assert(server::counted_close_codes[0] == 1000 && server::counted_close_codes[3] == 1006);
  EXPECT_EQ(closes[0].load(), 1u) << "1000s";
  EXPECT_EQ(closes[3].load(), 0u) << "1006s";
}

TEST_F(beast_transport_test, our_server_over_tls_with_a_ca_made_at_test_time) {
  // A CA, and a certificate for localhost that it signed.
  auto tmp = std::string{testing::TempDir()} + "kullsync-srv-tls-" + std::to_string(getpid());
  sh("mkdir -p " + tmp + " && cd " + tmp
     + " && openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=kullsync-test-ca"
       " -keyout ca.key -out ca.pem >/dev/null 2>&1"
       " && openssl req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout srv.key"
       " -out srv.csr >/dev/null 2>&1"
       " && printf 'subjectAltName=DNS:localhost\n' > ext"
       " && openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1"
       " -extfile ext -out srv.pem >/dev/null 2>&1");
  auto srv = server::spawn_sync_server(sys_, {});
  beast_server_options bo;
  bo.host = "127.0.0.1";
  bo.port = 0;
  bo.tls_cert_file = tmp + "/srv.pem";
  bo.tls_key_file = tmp + "/srv.key";
  beast_server listener{sys_, bo, srv.acceptor, srv.http_api};
  auto port = std::to_string(listener.start());
  beast_transport_options trusted;
  trusted.ca_file = tmp + "/ca.pem";
  auto e = engine_to("wss://localhost:" + port + "/ws", trusted);
  EXPECT_EQ(wait_for(e, connected).connection.protocol, "kull.v2");
  auto s = progress_roundtrip(e, "over-tls", 1, 2);
  EXPECT_EQ(s.stream.seq, 1u);
  // A client that does not trust the CA is refused by its own check.
  auto strict = engine_to("wss://localhost:" + port + "/ws");
  s = wait_for(strict, [](const sync_state& s) { return !s.connection.error.empty(); });
  EXPECT_NE(s.connection.error.find("certificate verify failed"), std::string::npos)
    << s.connection.error;
  // Plain WebSocket on the TLS port gets nowhere.
  auto plain = engine_to("ws://localhost:" + port + "/ws");
  s = wait_for(plain, [](const sync_state& s) { return !s.connection.error.empty(); });
  EXPECT_NE(s.connection.state, connection_state::connected);
  e.stop();
  strict.stop();
  plain.stop();
  listener.stop(1s);
  srv.stop();
  // A key that does not load is refused at start, naming the flag.
  beast_server_options broken = bo;
  broken.tls_key_file = tmp + "/ca.pem";
  auto srv2 = server::spawn_sync_server(sys_, {});
  beast_server refused{sys_, broken, srv2.acceptor, srv2.http_api};
  try {
    refused.start();
    ADD_FAILURE() << "started with a certificate that is not its key's";
  } catch (const std::invalid_argument& err) {
    EXPECT_NE(std::string{err.what()}.find("--tls-key"), std::string::npos) << err.what();
  }
  srv2.stop();
  sh("rm -rf " + tmp);
}

TEST_F(beast_transport_test, failures_have_readable_reasons) {
  // A port nobody listens on.
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  socklen_t len = sizeof(a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  auto port = ntohs(a.sin_port);
  close(fd);
  auto e = engine_to("ws://127.0.0.1:" + std::to_string(port) + "/ws");
  auto s = wait_for(e, [](const sync_state& s) { return !s.connection.error.empty(); });
  EXPECT_NE(s.connection.error.find("connect 127.0.0.1:" + std::to_string(port)),
            std::string::npos) << s.connection.error;
  EXPECT_NE(s.connection.error.find("refused"), std::string::npos) << s.connection.error;
  auto r = engine_to("ws://no-such-host.invalid/ws");
  s = wait_for(r, [](const sync_state& s) { return !s.connection.error.empty(); });
  EXPECT_NE(s.connection.error.find("resolve no-such-host.invalid"), std::string::npos)
    << s.connection.error;
  // A server that answers the upgrade with something else than 101: its status.
  our_server ours{sys_, {}};
  auto w = engine_to(ours.url + "/no-such-path");
  s = wait_for(w, [](const sync_state& s) { return !s.connection.error.empty(); });
  EXPECT_NE(s.connection.error.find("WebSocket handshake (HTTP 404"), std::string::npos)
    << s.connection.error;
  w.stop();
  w.await_stop(sys_);
}

TEST_F(beast_transport_test, third_party_server_plain_and_tls) {
  std::string dir = KULLSYNC_BASELINE_DIR;
  if (sh("command -v node").empty())
    GTEST_SKIP() << "node is not installed";
  sh("cd " + dir + " && [ -d node_modules/ws ] || npm install --no-audit --no-fund --silent >/dev/null 2>&1");
  child plain{{"node", dir + "/legacy-server.js", "--port", "0"}};
  ASSERT_FALSE(plain.address().empty());
  auto e = engine_to("ws://" + plain.address() + "/ws");
  // Node ws echoes the kull.v2 offer by default, then speaks v1: v1 it is.
  EXPECT_EQ(wait_for(e, connected).connection.protocol, "");
  msg::shoot_progress p;
  p.shoot_id = "legacy";
  p.status = msg::shoot_status::processing;
  p.processed_count = 1;
  p.total_count = 4;
  e.send_progress(p);
  auto relayed = wait_for(e, [](const sync_state& s) { return s.shoots.count("legacy") == 1; });
  EXPECT_EQ(relayed.stream.seq, 0u);
  EXPECT_EQ(relayed.stream.outbox, 0u);
  EXPECT_EQ(relayed.unknown_messages, 0u);

  auto tmp = std::string{testing::TempDir()} + "kullsync-tls-" + std::to_string(getpid());
  sh("mkdir -p " + tmp + " && openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost"
     " -addext subjectAltName=DNS:localhost -keyout " + tmp + "/key.pem -out " + tmp
     + "/cert.pem >/dev/null 2>&1");
  child tls{{"node", dir + "/legacy-server.js", "--port", "0", "--tls", tmp + "/cert.pem",
             tmp + "/key.pem"}};
  ASSERT_FALSE(tls.address().empty());
  auto port = tls.address().substr(tls.address().rfind(':') + 1);
  auto url = "wss://localhost:" + port + "/ws";
  // Verified against a CA file that holds the test certificate.
  beast_transport_options trusted;
  trusted.ca_file = tmp + "/cert.pem";
  auto ok = engine_to(url, trusted);
  wait_for(ok, connected);
  // The system store does not know it: refused, with the reason.
  auto strict = engine_to(url);
  auto s = wait_for(strict, [](const sync_state& s) { return !s.connection.error.empty(); });
  EXPECT_NE(s.connection.error.find("TLS handshake with localhost"), std::string::npos)
    << s.connection.error;
  EXPECT_NE(s.connection.error.find("certificate verify failed"), std::string::npos)
    << s.connection.error;
  // --insecure skips verification.
  beast_transport_options insecure;
  insecure.insecure = true;
  auto dev = engine_to(url, insecure);
  wait_for(dev, connected);
  sh("rm -rf " + tmp);
}
