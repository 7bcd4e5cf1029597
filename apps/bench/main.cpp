// kullsync-bench: a load generator for any conforming sync server.
//
//   fanout --url URL --users U --devices D --seconds S --window W [--server-pid P]
//   rate   --url URL --users U --devices D --seconds S --rate R   [--server-pid P]
//   idle   --url URL --conns N --seconds S --server-pid P [--hold]
//   (each with --protocol v1|v2: v2 offers kull.v2 and insists on its echo;
//   wss:// URLs speak TLS; --tokens FILE gives socket i the file's line i
//   instead of the legacy "bench-uU:dD"; --source-first K spreads the sockets
//   over 127.0.0.K, 127.0.0.K+1, ... 15,000 per address)
//
// Prints one JSON line of figures. Latency is measured from the sender's
// UPDATE_PROGRESS (its payload carries the send time) to each relayed
// SHOOT_PROGRESS, in this process's steady clock.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <memory>
#include <cstdio>
#include <deque>
#include <fstream>
#include <iostream>
#include <mutex>
#include <sstream>
#include <thread>
#include <netinet/in.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>

#include <CLI/CLI.hpp>

#include "kullsync/version.hpp"
#include "kullsync/transports/ws_frame.hpp"
#include "percentile.hpp"
#include "../shared/cli_checks.hpp"

using kullsync::app::finite_range;

namespace net = boost::asio;
namespace op = kullsync::ws::opcode;
using error_code = boost::system::error_code;
using tcp = net::ip::tcp;
using clk = std::chrono::steady_clock;

namespace {

const clk::time_point t0 = clk::now();

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(clk::now() - t0).count();
}

struct endpoint {
  std::string host, port;
};

struct options {
  std::string mode, path;
  std::vector<endpoint> servers; // a user's device d goes to servers[d % n]
  std::string protocol = "v1";
  int users = 100, devices = 4, window = 4, conns = 1000;
  double seconds = 10, rate = 1000;
  std::vector<int> pids; // CPU and memory figures: the sum over these
  int threads = 2;
  bool tls = false;   // wss://
  bool hold = false;  // idle: report once connected, then hold the sockets until killed
  int source_first = 0; // 0: idle sockets from 127.0.0.2+, others from any address
  int first_user = 0;   // user numbers start here (several generators, one server)
  double connect_rate = 0; // sockets opened per second (0: as fast as the server accepts)
  std::vector<std::string> tokens; // socket i's token; empty: legacy bench-uU:dD
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

/// A cluster's figures: every node and the broker together.
server_usage usage_of(const std::vector<int>& pids) {
  server_usage total;
  for (int pid : pids) {
    auto u = usage_of(pid);
    total.cpu_s += u.cpu_s;
    total.rss_kib += u.rss_kib;
  }
  return total;
}

class bench;

/// The Host header of device `d`'s server.
std::string host_of(const options& o, int d) {
  auto& s = o.servers[static_cast<size_t>(d) % o.servers.size()];
  return s.host + ":" + s.port;
}

/// One client socket. The WebSocket layer is written out here, lean on
/// purpose: a generator that spent more CPU per delivery than the server
/// would measure itself. A socket reads whatever has arrived (up to 16 KiB)
/// in one call and writes every update queued meanwhile in one call, as
/// any efficient client does.
class conn : public std::enable_shared_from_this<conn> {
public:
  conn(net::io_context& ioc, bench& b, int user, int device, std::string token)
    : sock_(net::make_strand(ioc)), b_(b), user_(user), device_(device),
      token_(std::move(token)) {}

  void start(const tcp::endpoint& ep, const std::string& source);
  /// From any thread.
  void post_update();
  bool sender() const { return device_ == 0; }

private:
  void on_connect(error_code ec);
  void on_tls_handshake(error_code ec);
  template <class Buffers, class Handler>
  void read_some(const Buffers& b, Handler&& h);
  template <class Buffers, class Handler>
  void write(const Buffers& b, Handler&& h);
  void do_read();
  void on_read(error_code ec, size_t n);
  bool on_handshake_reply();
  void on_frames();
  void on_message(std::string_view text);
  void queue_update();
  void queue_frame(uint8_t opcode, std::string_view payload);
  void flush();
  void fail(const std::string& what);
  uint32_t next_mask();
  void consume(size_t n);

  tcp::socket sock_;
  std::unique_ptr<net::ssl::stream<tcp::socket&>> tls_; // wss:// only
  bench& b_;
  int user_, device_;
  std::string token_;
  bool open_ = false, failed_ = false, reading_frames_ = false;
  std::unique_ptr<char[]> in_; // bytes read, not yet parsed
  size_t in_len_ = 0, in_cap_ = 0;
  std::string message_;        // a fragmented message being put together
  std::string pending_, inflight_;
  bool writing_ = false;
  uint32_t mask_seed_;
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
  /// True when the sender should send its next update.
  bool delivered(int64_t sent_ns, bool own_echo) {
    if (!measuring_)
      return false;
    auto lat = now_ns() - sent_ns;
    ++delivered_;
    {
      thread_local latency_log* mine = nullptr;
      if (mine == nullptr) {
        std::lock_guard<std::mutex> g{m_};
        mine = &lats_.emplace_back();
      }
      // Uncontended, except with the report, which may read while a
      // delivery that saw measuring_ still set is being recorded.
      std::lock_guard<std::mutex> g{mine->m};
      mine->lats.push_back(lat);
    }
    return own_echo && o_.mode == "fanout" && running_;
  }
  void sent() {
    if (measuring_)
      ++sent_;
  }
  /// A server's ping answered: what the server spent on keepalive while the
  /// sockets were still connecting is not a connect's cost.
  void pinged() { pings_.fetch_add(1, std::memory_order_relaxed); }
  const options& opts() const { return o_; }
  net::ssl::context& tls_context() { return tls_ctx_; }

private:
  options o_;
  net::io_context ioc_;
  // Load only: the server's certificate is not verified.
  net::ssl::context tls_ctx_{net::ssl::context::tls_client};
  std::vector<std::shared_ptr<conn>> conns_;
  std::atomic<int> connected_{0}, failed_{0};
  std::atomic<bool> measuring_{false}, running_{true};
  std::atomic<int64_t> delivered_{0}, sent_{0}, pings_{0};
  /// One io thread's latencies.
  struct latency_log {
    std::mutex m;
    std::vector<int64_t> lats;
  };
  std::mutex m_;
  std::deque<latency_log> lats_; // a deque: a thread's entry never moves
  std::string first_error_;
};

void conn::start(const tcp::endpoint& ep, const std::string& source) {
  mask_seed_ = (static_cast<uint32_t>(now_ns()) * 2654435761u + uint32_t(user_ * 8 + device_)) | 1u;
  error_code ec;
  if (!source.empty()) {
    sock_.open(tcp::v4(), ec);
    sock_.set_option(net::socket_base::reuse_address(true), ec);
    // The port is chosen at connect time, by the whole 4-tuple: a bind to
    // port 0 would search the address's ports one by one, slower as they fill.
    sock_.set_option(net::detail::socket_option::boolean<IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT>(true), ec);
    sock_.bind(tcp::endpoint{net::ip::make_address(source), 0}, ec);
    if (ec)
      return fail("bind " + source + ": " + ec.message());
  }
  sock_.async_connect(ep, [self = shared_from_this()](error_code ec) { self->on_connect(ec); });
}

void conn::fail(const std::string& what) {
  if (failed_)
    return;
  failed_ = true;
  b_.failed(what);
  error_code ignored;
  sock_.close(ignored);
}

std::string base64(const unsigned char* p, size_t n) {
  static const char* abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (size_t i = 0; i < n; i += 3) {
    uint32_t v = uint32_t(p[i]) << 16 | (i + 1 < n ? uint32_t(p[i + 1]) << 8 : 0)
                 | (i + 2 < n ? p[i + 2] : 0);
    out += abc[v >> 18 & 63];
    out += abc[v >> 12 & 63];
    out += i + 1 < n ? abc[v >> 6 & 63] : '=';
    out += i + 2 < n ? abc[v & 63] : '=';
  }
  return out;
}

template <class Buffers, class Handler>
void conn::read_some(const Buffers& b, Handler&& h) {
  if (tls_)
    tls_->async_read_some(b, std::forward<Handler>(h));
  else
    sock_.async_read_some(b, std::forward<Handler>(h));
}

template <class Buffers, class Handler>
void conn::write(const Buffers& b, Handler&& h) {
  if (tls_)
    net::async_write(*tls_, b, std::forward<Handler>(h));
  else
    net::async_write(sock_, b, std::forward<Handler>(h));
}

void conn::on_connect(error_code ec) {
  if (ec)
    return fail("connect: " + ec.message());
  sock_.set_option(tcp::no_delay(true), ec);
  if (!b_.opts().tls)
    return on_tls_handshake({});
  tls_ = std::make_unique<net::ssl::stream<tcp::socket&>>(sock_, b_.tls_context());
  tls_->async_handshake(net::ssl::stream_base::client,
                        [self = shared_from_this()](error_code ec) { self->on_tls_handshake(ec); });
}

void conn::on_tls_handshake(error_code ec) {
  if (ec)
    return fail("TLS handshake: " + ec.message());
  auto& o = b_.opts();
  unsigned char key[16];
  for (auto& k : key)
    k = static_cast<unsigned char>(next_mask() >> 7);
  auto token = !token_.empty() ? token_
                               : "bench-u" + std::to_string(user_) + ":d" + std::to_string(device_);
  pending_ = "GET " + o.path + "?token=" + token + " HTTP/1.1\r\nHost: " + host_of(o, device_)
             + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: "
             + base64(key, sizeof key) + "\r\nSec-WebSocket-Version: 13\r\n"
             + (o.protocol == "v2" ? "Sec-WebSocket-Protocol: kull.v2\r\n" : "") + "\r\n";
  flush();
  do_read();
}

void conn::do_read() {
  // Read straight behind what is already there (a frame's first part).
  if (!in_) {
    in_cap_ = b_.opts().mode == "idle" ? 512 : 16384;
    in_.reset(new char[in_cap_]);
  }
  if (in_len_ == in_cap_) { // one frame larger than the buffer
    std::unique_ptr<char[]> bigger{new char[in_cap_ * 2]};
    std::memcpy(bigger.get(), in_.get(), in_len_);
    in_ = std::move(bigger);
    in_cap_ *= 2;
  }
  read_some(net::buffer(in_.get() + in_len_, in_cap_ - in_len_),
                        [self = shared_from_this()](error_code ec, size_t n) {
                          self->in_len_ += n;
                          self->on_read(ec, n);
                        });
}

void conn::on_read(error_code ec, size_t) {
  if (ec)
    return fail(std::string{open_ ? "read: " : "handshake: "} + ec.message());
  if (!open_ && !on_handshake_reply())
    return;
  if (open_)
    on_frames();
  if (!failed_)
    do_read();
}

// The server's 101 reply; frames may follow it in the same read.
bool conn::on_handshake_reply() {
  std::string_view in{in_.get(), in_len_};
  auto end = in.find("\r\n\r\n");
  if (end == std::string_view::npos) {
    if (in_len_ > 8192)
      fail("handshake: reply too long");
    return !failed_;
  }
  if (in.compare(0, 12, "HTTP/1.1 101") != 0) {
    fail("handshake: " + std::string{in.substr(0, in.find("\r\n"))});
    return false;
  }
  if (b_.opts().protocol == "v2"
      && in.substr(0, end).find("Sec-WebSocket-Protocol: kull.v2") == std::string_view::npos) {
    fail("handshake: the server did not accept kull.v2");
    return false;
  }
  consume(end + 4);
  open_ = true;
  b_.connected();
  return true;
}

void conn::consume(size_t n) {
  std::memmove(in_.get(), in_.get() + n, in_len_ - n);
  in_len_ -= n;
}

// Parses every complete frame in in_ (server frames are unmasked), then
// writes what they caused in one send.
void conn::on_frames() {
  reading_frames_ = true;
  size_t at = 0;
  while (!failed_) {
    auto avail = in_len_ - at;
    auto* p = reinterpret_cast<const unsigned char*>(in_.get() + at);
    kullsync::ws::frame_header h;
    if (!kullsync::ws::read_frame_header(p, avail, h))
      break;
    if (h.masked)
      return fail("read: masked frame from the server");
    if (h.len > (64u << 20))
      return fail("read: frame too large");
    if (avail < h.size + h.len)
      break;
    std::string_view payload{in_.get() + at + h.size, static_cast<size_t>(h.len)};
    at += h.size + h.len;
    switch (h.opcode) {
      case op::continuation:
        if (message_.size() + payload.size() > (64u << 20))
          return fail("read: message too large");
        message_.append(payload);
        if (h.fin) {
          on_message(message_);
          message_.clear();
        }
        break;
      case op::text:
      case op::binary:
        if (h.fin) {
          on_message(payload);
        } else {
          message_.assign(payload);
        }
        break;
      case op::close:
        queue_frame(op::close, payload.substr(0, 2)); // echo the close code
        reading_frames_ = false;
        flush();
        return fail(payload.size() >= 2
                      ? "read: closed by the server with "
                          + std::to_string((uint8_t(payload[0]) << 8) | uint8_t(payload[1]))
                      : std::string("read: closed by the server"));
      case op::ping:
        queue_frame(op::pong, payload);
        b_.pinged();
        break;
      default: // pong, or reserved
        break;
    }
  }
  consume(at);
  reading_frames_ = false;
  flush();
}

void conn::on_message(std::string_view text) {
  // Lean on purpose: find the two fields we need, no JSON parse.
  if (text.find("\"SHOOT_PROGRESS\"") == std::string_view::npos)
    return;
  auto at = text.find("\"sentAt\":");
  if (at == std::string_view::npos)
    return;
  int64_t sent = std::strtoll(text.data() + at + 9, nullptr, 10);
  bool own = sender() && text.find("\"deviceId\":\"d0\"") != std::string_view::npos;
  if (b_.delivered(sent, own))
    queue_update();
}

void conn::post_update() {
  net::post(sock_.get_executor(), [self = shared_from_this()] {
    self->queue_update();
    self->flush();
  });
}

void conn::queue_update() {
  if (!open_ || failed_)
    return;
  char buf[256];
  auto n = std::snprintf(buf, sizeof(buf),
                         "{\"type\":\"UPDATE_PROGRESS\",\"payload\":{\"shootId\":\"bench-%d\","
                         "\"status\":\"processing\",\"processedCount\":%lld,\"totalCount\":"
                         "1000000,\"provider\":\"bench\",\"currentImage\":\"IMG_0001.CR3\","
                         "\"sentAt\":%lld}}",
                         user_, static_cast<long long>(++seq_),
                         static_cast<long long>(now_ns()));
  queue_frame(op::text, std::string_view{buf, static_cast<size_t>(n)});
  b_.sent();
}

// A client frame: FIN, the opcode, the length, a mask key and the masked
// payload (RFC 6455 5.3).
void conn::queue_frame(uint8_t opcode, std::string_view payload) {
  size_t n = payload.size();
  unsigned char head[kullsync::ws::max_frame_header];
  pending_.append(reinterpret_cast<const char*>(head),
                  kullsync::ws::write_frame_header(head, opcode, n, true));
  uint32_t key = next_mask();
  unsigned char k[4] = {uint8_t(key >> 24), uint8_t(key >> 16), uint8_t(key >> 8), uint8_t(key)};
  pending_.append(reinterpret_cast<const char*>(k), 4);
  auto at = pending_.size();
  pending_.append(payload);
  for (size_t i = 0; i < n; ++i)
    pending_[at + i] = static_cast<char>(pending_[at + i] ^ k[i & 3]);
}

uint32_t conn::next_mask() {
  // xorshift32: masks only need to be unpredictable to intermediaries.
  mask_seed_ ^= mask_seed_ << 13;
  mask_seed_ ^= mask_seed_ >> 17;
  mask_seed_ ^= mask_seed_ << 5;
  return mask_seed_;
}

// One write at a time; whatever is queued meanwhile leaves with the next.
void conn::flush() {
  if (writing_ || reading_frames_ || pending_.empty() || failed_)
    return;
  writing_ = true;
  std::swap(pending_, inflight_);
  write(net::buffer(inflight_),
                   [self = shared_from_this()](error_code ec, size_t) {
                     self->writing_ = false;
                     self->inflight_.clear();
                     if (ec)
                       return self->fail("write: " + ec.message());
                     self->flush();
                   });
}

int bench::run() {
  std::vector<tcp::endpoint> eps;
  for (auto& s : o_.servers)
    eps.emplace_back(net::ip::make_address(s.host), static_cast<uint16_t>(std::stoi(s.port)));
  auto guard = net::make_work_guard(ioc_);
  std::vector<std::thread> threads;
  for (int i = 0; i < o_.threads; ++i)
    threads.emplace_back([this] { ioc_.run(); });
  int total = o_.mode == "idle" ? o_.conns : o_.users * o_.devices;
  if (!o_.tokens.empty() && o_.tokens.size() < static_cast<size_t>(total)) {
    std::cerr << "--tokens: " << o_.tokens.size() << " tokens for " << total << " sockets\n";
    return 2;
  }
  auto before_idle = usage_of(o_.pids);
  auto connect_start = clk::now();
  for (int i = 0; i < total; ++i) {
    int user = o_.first_user + (o_.mode == "idle" ? i : i / o_.devices);
    int dev = o_.mode == "idle" ? 0 : i % o_.devices;
    auto c = std::make_shared<conn>(ioc_, *this, user, dev,
                                    o_.tokens.empty() ? std::string{} : o_.tokens[i]);
    // Spread sockets over 127.0.0.x so more than one port range fits.
    std::string source;
    if (o_.source_first > 0)
      source = "127.0.0." + std::to_string(o_.source_first + i / 15000);
    else if (o_.mode == "idle")
      source = "127.0.0." + std::to_string(2 + (i / 20000));
    conns_.push_back(c);
    c->start(eps[static_cast<size_t>(dev) % eps.size()], source);
    if (o_.connect_rate > 0) // paced: the same load on the server at every count
      std::this_thread::sleep_until(connect_start
                                    + std::chrono::duration_cast<clk::duration>(
                                      std::chrono::duration<double>((i + 1) / o_.connect_rate)));
    if (i % 500 == 499) // do not flood the accept queue
      while (connected_ + failed_ < i - 2000)
        std::this_thread::sleep_for(std::chrono::milliseconds{1});
  }
  auto deadline = clk::now() + std::chrono::seconds{120};
  while (connected_ + failed_ < total && clk::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds{2});
  double connect_s = std::chrono::duration<double>(clk::now() - connect_start).count();
  std::ostringstream js;
  js << "{\"mode\":\"" << o_.mode << "\",\"protocol\":\"" << o_.protocol << "\",\"connected\":" << connected_.load()
     << ",\"failed\":" << failed_.load() << ",\"connect_s\":" << connect_s
     << ",\"pings\":" << pings_.load();
  if (o_.mode == "idle" && o_.hold) {
    if (!first_error_.empty())
      js << ",\"first_error\":\"" << first_error_ << "\"";
    std::cout << js.str() << "}" << std::endl; // the caller measures; we hold until killed
    for (;;)
      std::this_thread::sleep_for(std::chrono::hours{1});
  }
  std::this_thread::sleep_for(std::chrono::milliseconds{500}); // DEVICE_CONNECTED storm
  if (o_.mode == "idle") {
    std::this_thread::sleep_for(std::chrono::duration<double>(o_.seconds));
    auto after = usage_of(o_.pids);
    double per = connected_ > 0 ? double(after.rss_kib - before_idle.rss_kib) / connected_ : 0;
    js << ",\"server_rss_kib\":" << after.rss_kib << ",\"kib_per_conn\":" << per;
  } else {
    auto u0 = usage_of(o_.pids);
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
          c->post_update();
      std::this_thread::sleep_until(end);
    } else { // rate: open loop, spread evenly over the senders
      double per_ns = o_.rate / 1e9;
      int64_t issued = 0;
      size_t next = 0;
      while (clk::now() < end) {
        auto due = static_cast<int64_t>(
          std::chrono::duration<double, std::nano>(clk::now() - start).count() * per_ns);
        for (; issued < due; ++issued)
          senders[next++ % senders.size()]->post_update();
        std::this_thread::sleep_for(std::chrono::microseconds{200});
      }
    }
    running_ = false;
    std::this_thread::sleep_for(std::chrono::milliseconds{300}); // in flight
    measuring_ = false;
    auto u1 = usage_of(o_.pids);
    double secs = std::chrono::duration<double>(clk::now() - start).count();
    std::vector<int64_t> all;
    {
      std::lock_guard<std::mutex> g{m_};
      for (auto& log : lats_) {
        std::lock_guard<std::mutex> g2{log.m};
        all.insert(all.end(), log.lats.begin(), log.lats.end());
      }
    }
    std::sort(all.begin(), all.end());
    auto pct = [&](double p) { return kullsync::bench::percentile(all, p) / 1e6; };
    double cpu = u1.cpu_s - u0.cpu_s;
    js << ",\"sent\":" << sent_.load() << ",\"delivered\":" << delivered_.load()
       << ",\"delivered_per_s\":" << delivered_ / secs << ",\"p50_ms\":" << pct(0.5)
       << ",\"p90_ms\":" << pct(0.9) << ",\"p99_ms\":" << pct(0.99)
       << ",\"p999_ms\":" << pct(0.999) << ",\"max_ms\":" << (all.empty() ? 0 : all.back() / 1e6)
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
  CLI::App app{"kullsync-bench: load generator (v1 or v2)"};
  app.set_version_flag("--version", std::string{"kullsync-bench "} + kullsync::version);
  app.require_subcommand(1);
  options o;
  std::vector<std::string> urls{"ws://127.0.0.1:5000/ws"};
  std::string tokens_file;
  auto common = [&](CLI::App* c) {
    c->add_option("--url", urls,
                  "ws://HOST:PORT/PATH (IPv4 literal); repeat for a cluster: a user's "
                  "device d connects to the (d mod n)-th")
      ->capture_default_str();
    c->add_option("--seconds", o.seconds, "measurement time")->check(finite_range(0.1, 3600.0));
    c->add_option("--server-pid", o.pids,
                  "server process for CPU and memory figures (repeat: their sum)");
    c->add_option("--threads", o.threads, "io threads")->check(CLI::Range(1, 64));
    c->add_option("--protocol", o.protocol, "v1, or v2 (offers kull.v2)")
      ->check(CLI::IsMember({"v1", "v2"}))->capture_default_str();
    c->add_option("--tokens", tokens_file, "file of tokens, one per line: socket i sends line i "
                                           "(default: legacy bench-uU:dD)")
      ->check(CLI::ExistingFile);
    c->add_option("--source-first", o.source_first,
                  "connect from 127.0.0.K, K+1, ... (15,000 sockets each)")
      ->check(CLI::Range(1, 250));
    c->add_option("--first-user", o.first_user, "the first user's number (several generators)")
      ->check(CLI::Range(0, 100000000));
    c->add_option("--connect-rate", o.connect_rate,
                  "sockets opened per second (default: as fast as they are accepted)")
      ->check(finite_range(0.0, 1e6));
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
  rate->add_option("--rate", o.rate)->check(finite_range(1.0, 1e8));
  common(idle);
  idle->add_option("--conns", o.conns)->check(CLI::Range(1, 1000000));
  idle->add_flag("--hold", o.hold, "print the line once connected, then hold the sockets until killed");
  CLI11_PARSE(app, argc, argv);
  o.mode = app.get_subcommands().front()->get_name();
  if (!tokens_file.empty()) {
    std::ifstream in{tokens_file};
    for (std::string line; std::getline(in, line);)
      if (!line.empty())
        o.tokens.push_back(line);
  }
  for (auto& url : urls) {
    bool wss = url.rfind("wss://", 0) == 0;
    if (url.rfind("ws://", 0) != 0 && !wss) {
      std::cerr << "--url must be ws://HOST:PORT/PATH or wss://HOST:PORT/PATH\n";
      return 2;
    }
    if (wss != (o.servers.empty() ? wss : o.tls)) {
      std::cerr << "--url: all ws:// or all wss://\n";
      return 2;
    }
    o.tls = wss;
    auto rest = url.substr(wss ? 6 : 5);
    auto slash = rest.find('/');
    auto hostport = rest.substr(0, slash);
    o.path = slash == std::string::npos ? "/" : rest.substr(slash);
    auto colon = hostport.rfind(':');
    if (colon == std::string::npos) {
      std::cerr << "--url needs a port\n";
      return 2;
    }
    o.servers.push_back({hostport.substr(0, colon), hostport.substr(colon + 1)});
  }
  return bench{o}.run();
}
