// kullsync-bench: a v1 load generator for any conforming sync server.
//
//   fanout --url URL --users U --devices D --seconds S --window W [--server-pid P]
//   rate   --url URL --users U --devices D --seconds S --rate R   [--server-pid P]
//   idle   --url URL --conns N --seconds S --server-pid P
//
// Prints one JSON line of figures. Latency is measured from the sender's
// UPDATE_PROGRESS (its payload carries the send time) to each relayed
// SHOOT_PROGRESS, in this process's steady clock.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <deque>
#include <fstream>
#include <iostream>
#include <mutex>
#include <sstream>
#include <thread>
#include <unistd.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

#include <CLI/CLI.hpp>

#include "percentile.hpp"

namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using clk = std::chrono::steady_clock;

namespace {

const clk::time_point t0 = clk::now();

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(clk::now() - t0).count();
}

struct options {
  std::string mode, host, port, path;
  int users = 100, devices = 4, window = 4, conns = 1000;
  double seconds = 10, rate = 1000;
  int pid = 0, threads = 2;
};

struct server_usage {
  double cpu_s = 0;
  long rss_kib = 0;
};

server_usage usage_of(int pid) {
  server_usage u;
  if (pid <= 0)
    return u;
  std::ifstream stat{"/proc/" + std::to_string(pid) + "/stat"};
  std::string s{std::istreambuf_iterator<char>{stat}, {}};
  auto rp = s.rfind(')');
  if (rp == std::string::npos || rp + 2 > s.size())
    return u; // no such process
  std::istringstream in{s.substr(rp + 2)};
  std::string f;
  long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && in >> f; ++i) {
    if (i == 14)
      utime = std::stol(f);
    if (i == 15)
      stime = std::stol(f);
  }
  u.cpu_s = double(utime + stime) / sysconf(_SC_CLK_TCK);
  std::ifstream status{"/proc/" + std::to_string(pid) + "/status"};
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmRSS:", 0) == 0)
      u.rss_kib = std::stol(line.substr(6));
  return u;
}

class bench;

class conn : public std::enable_shared_from_this<conn> {
public:
  conn(net::io_context& ioc, bench& b, int user, int device)
    : ws_(net::make_strand(ioc)), b_(b), user_(user), device_(device) {}

  void start(const tcp::endpoint& ep, const std::string& source);
  void send_update();
  bool sender() const { return device_ == 0; }

private:
  void on_connect(beast::error_code ec);
  void on_handshake(beast::error_code ec);
  void do_read();
  void on_read(beast::error_code ec, size_t);
  void do_write();

  websocket::stream<beast::tcp_stream> ws_;
  beast::flat_buffer buf_;
  bench& b_;
  int user_, device_;
  std::deque<std::string> out_;
  bool writing_ = false;
  int64_t seq_ = 0;
};

class bench {
public:
  explicit bench(options o) : o_(std::move(o)), ioc_(o_.threads) {}

  int run();

  // Called from io threads.
  void connected() { ++connected_; }
  void failed(const std::string& what) {
    ++failed_;
    std::lock_guard<std::mutex> g{m_};
    if (first_error_.empty())
      first_error_ = what;
  }
  void delivered(int64_t sent_ns, bool own_echo, conn& c) {
    if (!measuring_)
      return;
    auto lat = now_ns() - sent_ns;
    ++delivered_;
    {
      thread_local std::vector<int64_t>* mine = nullptr;
      if (mine == nullptr) {
        std::lock_guard<std::mutex> g{m_};
        lats_.emplace_back();
        mine = &lats_.back();
      }
      mine->push_back(lat);
    }
    if (own_echo && o_.mode == "fanout" && running_)
      c.send_update();
  }
  void sent() {
    if (measuring_)
      ++sent_;
  }
  const options& opts() const { return o_; }

private:
  options o_;
  net::io_context ioc_;
  std::vector<std::shared_ptr<conn>> conns_;
  std::atomic<int> connected_{0}, failed_{0};
  std::atomic<bool> measuring_{false}, running_{true};
  std::atomic<int64_t> delivered_{0}, sent_{0};
  std::mutex m_;
  std::deque<std::vector<int64_t>> lats_;
  std::string first_error_;
};

void conn::start(const tcp::endpoint& ep, const std::string& source) {
  auto& sock = beast::get_lowest_layer(ws_).socket();
  beast::error_code ec;
  if (!source.empty()) {
    sock.open(tcp::v4(), ec);
    sock.set_option(net::socket_base::reuse_address(true), ec);
    sock.bind(tcp::endpoint{net::ip::make_address(source), 0}, ec);
    if (ec)
      return b_.failed("bind " + source + ": " + ec.message());
  }
  beast::get_lowest_layer(ws_).expires_after(std::chrono::seconds{30});
  beast::get_lowest_layer(ws_).async_connect(
    ep, beast::bind_front_handler(&conn::on_connect, shared_from_this()));
}

void conn::on_connect(beast::error_code ec) {
  if (ec)
    return b_.failed("connect: " + ec.message());
  beast::get_lowest_layer(ws_).socket().set_option(tcp::no_delay(true));
  beast::get_lowest_layer(ws_).expires_never();
  auto& o = b_.opts();
  auto target = o.path + "?token=bench-u" + std::to_string(user_) + ":d"
                + std::to_string(device_);
  ws_.async_handshake(o.host + ":" + o.port, target,
                      beast::bind_front_handler(&conn::on_handshake, shared_from_this()));
}

void conn::on_handshake(beast::error_code ec) {
  if (ec)
    return b_.failed("handshake: " + ec.message());
  b_.connected();
  do_read();
}

void conn::do_read() {
  ws_.async_read(buf_, beast::bind_front_handler(&conn::on_read, shared_from_this()));
}

void conn::on_read(beast::error_code ec, size_t) {
  if (ec)
    return b_.failed("read: " + ec.message());
  auto data = buf_.data();
  std::string_view text{static_cast<const char*>(data.data()), data.size()};
  // Lean on purpose: find the two fields we need, no JSON parse.
  if (text.find("\"SHOOT_PROGRESS\"") != std::string_view::npos) {
    auto at = text.find("\"sentAt\":");
    if (at != std::string_view::npos) {
      int64_t sent = std::strtoll(text.data() + at + 9, nullptr, 10);
      bool own = sender() && text.find("\"deviceId\":\"d0\"") != std::string_view::npos;
      b_.delivered(sent, own, *this);
    }
  }
  buf_.consume(buf_.size());
  do_read();
}

void conn::send_update() {
  net::post(ws_.get_executor(), [self = shared_from_this()] {
    char buf[256];
    auto n = std::snprintf(buf, sizeof(buf),
                           "{\"type\":\"UPDATE_PROGRESS\",\"payload\":{\"shootId\":\"bench-%d\","
                           "\"status\":\"processing\",\"processedCount\":%lld,\"totalCount\":"
                           "1000000,\"provider\":\"bench\",\"currentImage\":\"IMG_0001.CR3\","
                           "\"sentAt\":%lld}}",
                           self->user_, static_cast<long long>(++self->seq_),
                           static_cast<long long>(now_ns()));
    self->out_.emplace_back(buf, n);
    self->b_.sent();
    if (!self->writing_)
      self->do_write();
  });
}

void conn::do_write() {
  writing_ = true;
  ws_.text(true);
  ws_.async_write(net::buffer(out_.front()),
                  [self = shared_from_this()](beast::error_code ec, size_t) {
                    self->out_.pop_front();
                    self->writing_ = false;
                    if (ec)
                      return self->b_.failed("write: " + ec.message());
                    if (!self->out_.empty())
                      self->do_write();
                  });
}

int bench::run() {
  tcp::endpoint ep{net::ip::make_address(o_.host), static_cast<uint16_t>(std::stoi(o_.port))};
  auto guard = net::make_work_guard(ioc_);
  std::vector<std::thread> threads;
  for (int i = 0; i < o_.threads; ++i)
    threads.emplace_back([this] { ioc_.run(); });
  int total = o_.mode == "idle" ? o_.conns : o_.users * o_.devices;
  auto before_idle = usage_of(o_.pid);
  for (int i = 0; i < total; ++i) {
    int user = o_.mode == "idle" ? i : i / o_.devices;
    int dev = o_.mode == "idle" ? 0 : i % o_.devices;
    auto c = std::make_shared<conn>(ioc_, *this, user, dev);
    // Spread idle sockets over 127.0.0.x so more than one port range fits.
    std::string source = o_.mode == "idle" ? "127.0.0." + std::to_string(2 + (i / 20000)) : "";
    conns_.push_back(c);
    c->start(ep, source);
    if (i % 500 == 499) // do not flood the accept queue
      while (connected_ + failed_ < i - 2000)
        std::this_thread::sleep_for(std::chrono::milliseconds{1});
  }
  auto deadline = clk::now() + std::chrono::seconds{60};
  while (connected_ + failed_ < total && clk::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds{10});
  std::this_thread::sleep_for(std::chrono::milliseconds{500}); // DEVICE_CONNECTED storm
  std::ostringstream js;
  js << "{\"mode\":\"" << o_.mode << "\",\"connected\":" << connected_.load()
     << ",\"failed\":" << failed_.load();
  if (o_.mode == "idle") {
    std::this_thread::sleep_for(std::chrono::duration<double>(o_.seconds));
    auto after = usage_of(o_.pid);
    double per = connected_ > 0 ? double(after.rss_kib - before_idle.rss_kib) / connected_ : 0;
    js << ",\"server_rss_kib\":" << after.rss_kib << ",\"kib_per_conn\":" << per;
  } else {
    auto u0 = usage_of(o_.pid);
    measuring_ = true;
    auto start = clk::now();
    auto end = start + std::chrono::duration_cast<clk::duration>(
                         std::chrono::duration<double>(o_.seconds));
    std::vector<std::shared_ptr<conn>> senders;
    for (auto& c : conns_)
      if (c->sender())
        senders.push_back(c);
    if (o_.mode == "fanout") {
      for (auto& c : senders)
        for (int w = 0; w < o_.window; ++w)
          c->send_update();
      std::this_thread::sleep_until(end);
    } else { // rate: open loop, spread evenly over the senders
      double per_ns = o_.rate / 1e9;
      int64_t issued = 0;
      size_t next = 0;
      while (clk::now() < end) {
        auto due = static_cast<int64_t>(
          std::chrono::duration<double, std::nano>(clk::now() - start).count() * per_ns);
        for (; issued < due; ++issued)
          senders[next++ % senders.size()]->send_update();
        std::this_thread::sleep_for(std::chrono::microseconds{200});
      }
    }
    running_ = false;
    std::this_thread::sleep_for(std::chrono::milliseconds{300}); // in flight
    measuring_ = false;
    auto u1 = usage_of(o_.pid);
    double secs = std::chrono::duration<double>(clk::now() - start).count();
    std::vector<int64_t> all;
    {
      std::lock_guard<std::mutex> g{m_};
      for (auto& v : lats_)
        all.insert(all.end(), v.begin(), v.end());
    }
    std::sort(all.begin(), all.end());
    auto pct = [&](double p) { return kullsync::bench::percentile(all, p) / 1e6; };
    double cpu = u1.cpu_s - u0.cpu_s;
    js << ",\"sent\":" << sent_.load() << ",\"delivered\":" << delivered_.load()
       << ",\"delivered_per_s\":" << delivered_ / secs << ",\"p50_ms\":" << pct(0.5)
       << ",\"p99_ms\":" << pct(0.99) << ",\"max_ms\":" << (all.empty() ? 0 : all.back() / 1e6)
       << ",\"server_cpu_s\":" << cpu << ",\"delivered_per_server_cpu_s\":"
       << (cpu > 0 ? delivered_ / cpu : 0);
  }
  if (!first_error_.empty())
    js << ",\"first_error\":\"" << first_error_ << "\"";
  js << "}";
  std::cout << js.str() << std::endl;
  std::_Exit(0); // sockets close with the process; no orderly teardown needed
}

} // namespace

int main(int argc, char** argv) {
  CLI::App app{"kullsync-bench: v1 load generator"};
  app.require_subcommand(1);
  options o;
  std::string url = "ws://127.0.0.1:5000/ws";
  auto common = [&](CLI::App* c) {
    c->add_option("--url", url, "ws://HOST:PORT/PATH (IPv4 literal)")->capture_default_str();
    c->add_option("--seconds", o.seconds, "measurement time")->check(CLI::Range(0.1, 3600.0));
    c->add_option("--server-pid", o.pid, "server process for CPU and memory figures");
    c->add_option("--threads", o.threads, "io threads")->check(CLI::Range(1, 64));
  };
  auto* fan = app.add_subcommand("fanout", "closed loop: device 0 keeps W updates in flight");
  auto* rate = app.add_subcommand("rate", "open loop: R updates per second in total");
  auto* idle = app.add_subcommand("idle", "N idle sockets: server memory per socket");
  for (auto* c : {fan, rate}) {
    common(c);
    c->add_option("--users", o.users)->check(CLI::Range(1, 1000000));
    c->add_option("--devices", o.devices)->check(CLI::Range(1, 1000));
  }
  fan->add_option("--window", o.window)->check(CLI::Range(1, 10000));
  rate->add_option("--rate", o.rate)->check(CLI::Range(1.0, 1e8));
  common(idle);
  idle->add_option("--conns", o.conns)->check(CLI::Range(1, 1000000));
  CLI11_PARSE(app, argc, argv);
  o.mode = app.get_subcommands().front()->get_name();
  if (url.rfind("ws://", 0) != 0) {
    std::cerr << "--url must be ws://HOST:PORT/PATH\n";
    return 2;
  }
  auto rest = url.substr(5);
  auto slash = rest.find('/');
  auto hostport = rest.substr(0, slash);
  o.path = slash == std::string::npos ? "/" : rest.substr(slash);
  auto colon = hostport.rfind(':');
  if (colon == std::string::npos) {
    std::cerr << "--url needs a port\n";
    return 2;
  }
  o.host = hostport.substr(0, colon);
  o.port = hostport.substr(colon + 1);
  return bench{o}.run();
}
