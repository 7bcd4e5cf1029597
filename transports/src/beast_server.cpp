#include "kullsync/transports/beast_server.hpp"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <utility>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include <caf/actor_system.hpp>
#include <caf/execution_unit.hpp>
#include <caf/make_actor.hpp>
#include <caf/mailbox_element.hpp>
#include <caf/monitorable_actor.hpp>
#include <caf/resumable.hpp>
#include <caf/scheduled_actor.hpp>
#include <caf/scheduler/abstract_coordinator.hpp>
#include <caf/send.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "coalescing_socket.hpp"
#include "ws_frame_reader.hpp"
#include "kullsync/log.hpp"

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace kullsync {

namespace {

struct counters {
  std::atomic<uint64_t> sockets_open{0};
  std::atomic<uint64_t> sockets_accepted{0};
  std::atomic<uint64_t> slow_consumers_closed{0};
  std::atomic<uint64_t> http_requests{0};
  std::atomic<uint64_t> socket_sends{0};
  std::atomic<uint64_t> frames_written{0};
  std::atomic<uint64_t> actor_turns_on_io{0};
};

class ws_conn;

transport_actor make_socket_endpoint(caf::actor_system& sys,
                                     std::shared_ptr<ws_conn> c);

/// A socket's outgoing frames: a vector consumed from the front, so that an
/// idle socket holds no allocation (std::deque keeps a 512-byte block).
class frame_queue {
public:
  bool empty() const { return head_ == frames_.size(); }
  size_t size() const { return frames_.size() - head_; }
  const shared_frame& front() const { return frames_[head_]; }
  void push_back(shared_frame f) { frames_.push_back(std::move(f)); }
  void pop_front() {
    frames_[head_++].text.reset();
    if (empty())
      clear();
  }
  void clear() {
    frames_.clear();
    head_ = 0;
    if (frames_.capacity() > 64)
      std::vector<shared_frame>{}.swap(frames_);
  }

private:
  std::vector<shared_frame> frames_;
  size_t head_ = 0;
};

/// Whether the io threads still take work. Once the server has stopped, a
/// handler posted to its io_context would never run and never be destroyed:
/// it holds its connection, which holds the io_context. So after the stop
/// such handlers are dropped, actor turns go to CAF's scheduler, and the
/// outbox takes no frames.
class io_gate {
public:
  /// Runs `f` (which posts to the io threads) unless the gate is closed;
  /// true if it ran. A post is either run by stop()'s last poll or refused.
  template <class F>
  bool if_open(F&& f) {
    std::lock_guard<std::mutex> guard{mtx_};
    if (closed_)
      return false;
    f();
    return true;
  }
  /// net::post, unless the gate is closed (the handler is then dropped).
  template <class Executor, class Handler>
  void post(const Executor& ex, Handler&& h) {
    if_open([&] { net::post(ex, std::forward<Handler>(h)); });
  }
  void close() {
    std::lock_guard<std::mutex> guard{mtx_};
    closed_ = true;
  }
  bool closed() const { return closed_; }

private:
  std::mutex mtx_;
  std::atomic<bool> closed_{false};
};

/// Runs the server's actors on the io thread when the io thread (or one of
/// them running there) wakes them, as CAF's own multiplexer runs brokers:
/// a frame then goes socket -> session -> hub -> sockets without waking
/// another thread, and every frame read in one pass over the ready sockets
/// is routed before their sockets are written. Actors not named in the
/// options go to CAF's scheduler, as any send would put them.
class io_unit final : public caf::execution_unit {
public:
  io_unit(caf::actor_system& sys, net::io_context& ioc, io_gate& gate,
          std::vector<std::string> names, std::atomic<uint64_t>& turns)
    : caf::execution_unit(&sys), ioc_(ioc), gate_(gate), names_(std::move(names)),
      turns_(turns) {
  }

  void exec_later(caf::resumable* job) override {
    if (runs_here(job))
      post_turn(job);
    else
      system().scheduler().enqueue(job);
  }

  /// The context for sends from the io thread; null when no actor runs here.
  caf::execution_unit* context() { return names_.empty() ? nullptr : this; }

private:
  // Messages per turn: enough to route a burst in one go, few enough that
  // sockets are served between the turns of a busy actor.
  static constexpr size_t turn_throughput = 256;

  /// One posted turn of an actor. A turn that never runs (the io_context is
  /// destroyed first) still releases its actor, as CAF's multiplexer does.
  class turn {
  public:
    turn(io_unit* unit, caf::resumable* job) : unit_(unit), job_(job) {}
    turn(turn&& x) noexcept : unit_(x.unit_), job_(std::exchange(x.job_, nullptr)) {}
    turn(const turn&) = delete;
    turn& operator=(const turn&) = delete;
    turn& operator=(turn&&) = delete;
    ~turn() {
      if (job_ != nullptr)
        caf::scheduler::abstract_coordinator::cleanup_and_release(job_);
    }
    void operator()() { unit_->resume(std::exchange(job_, nullptr)); }

  private:
    io_unit* unit_;
    caf::resumable* job_;
  };

  bool runs_here(caf::resumable* job) const {
    if (job->subtype() != caf::resumable::scheduled_actor)
      return false;
    const char* name = static_cast<caf::scheduled_actor*>(job)->name();
    return std::any_of(names_.begin(), names_.end(),
                       [&](const std::string& n) { return n == name; });
  }

  void post_turn(caf::resumable* job) {
    if (!gate_.if_open([&] { net::post(ioc_, turn{this, job}); }))
      system().scheduler().enqueue(job);
  }

  void resume(caf::resumable* job) {
    turns_.fetch_add(1, std::memory_order_relaxed);
    switch (job->resume(this, turn_throughput)) {
      case caf::resumable::resume_later:
        post_turn(job);
        break;
      case caf::resumable::shutdown_execution_unit:
        break; // not an actor's result; nothing to release
      default:
        caf::intrusive_ptr_release(job);
    }
  }

  net::io_context& ioc_;
  io_gate& gate_;
  std::vector<std::string> names_;
  std::atomic<uint64_t>& turns_;
};

/// A send from the io thread: a recipient that may run there is run there.
template <class Dest, class... Ts>
void tell(io_unit& unit, const Dest& dest, Ts&&... xs) {
  using token = caf::detail::type_list<caf::detail::strip_and_convert_t<Ts>...>;
  static_assert(caf::response_type_unbox<caf::signatures_of_t<Dest>, token>::valid,
                "receiver does not accept given message");
  if (dest)
    dest->eq_impl(caf::make_message_id(), nullptr, unit.context(),
                  std::forward<Ts>(xs)...);
}

/// What connections share with the server. It owns the io_context: socket
/// actors may outlive the server object, and their connections must still
/// find the context (stopped, but alive) until the last one is gone.
struct server_core {
  net::io_context ioc;
  caf::actor_system& sys;
  beast_server_options opts;
  acceptor_actor acceptor;
  http_handler_actor http;
  counters stats;
  std::mutex mtx;
  std::set<std::shared_ptr<ws_conn>> conns; // open WebSockets, for shutdown
  std::set<ws_conn*> live;                    // every connection object
  std::atomic<bool> stopping{false};
  io_gate gate;
  io_unit unit; // after ioc and gate: it posts there
  std::shared_ptr<spdlog::logger> log = log::get("transport.server");
  // Frames from actors for any socket, when one io thread serves them all.
  // The io thread's loop drains it when idle; a frame from another thread
  // posts one drain for every frame that comes meanwhile, whatever its
  // socket (a broadcast to a user's devices wakes the io thread once).
  std::mutex outbox_mtx;
  std::vector<std::pair<std::shared_ptr<ws_conn>, shared_frame>> outbox;
  std::vector<std::pair<std::shared_ptr<ws_conn>, shared_frame>> drained;

  bool outbox_empty() {
    std::lock_guard<std::mutex> guard{outbox_mtx};
    return outbox.empty();
  }

  /// One io thread runs every socket's handlers: no strands, one outbox.
  bool one_io_thread() const { return opts.io_threads <= 1; }

  server_core(caf::actor_system& s, beast_server_options o, acceptor_actor a,
              http_handler_actor h)
    : ioc(static_cast<int>(std::max<size_t>(1, o.io_threads))), sys(s),
      opts(std::move(o)), acceptor(std::move(a)), http(std::move(h)),
      unit(s, ioc, gate, opts.io_thread_actors, stats.actor_turns_on_io) {
  }

};

// -- WebSocket ------------------------------------------------------------------

/// One accepted WebSocket. Beast answers the upgrade (with a stream that
/// lives only for the handshake); from then on the connection speaks RFC 6455
/// itself: it waits for the socket to be readable, reads whatever is there
/// into the io thread's scratch buffer and parses every frame of it in one
/// pass (ws::frame_reader), and appends its frames to the coalescing socket.
/// An idle socket holds no buffer and no timer: one wait on the socket.
class ws_conn : public std::enable_shared_from_this<ws_conn>, private ws::frame_sink {
public:
  ws_conn(std::shared_ptr<server_core> core, tcp::socket&& socket)
    : core_(std::move(core)), sock_(std::move(socket)),
      reader_(core_->opts.max_frame_bytes) {
    if (!core_->one_io_thread())
      inbox_ = std::make_unique<strand_inbox>();
    std::lock_guard<std::mutex> guard{core_->mtx};
    core_->live.insert(this);
  }
  ~ws_conn() override {
    std::lock_guard<std::mutex> guard{core_->mtx};
    core_->live.erase(this);
  }

  // The session is told of the socket before the handshake completes: the
  // client sees its link open only once the session attached (and so joined
  // its user), so nothing published after that can miss this socket.
  // `early` is what the client sent right behind its upgrade request.
  void do_accept(http::request<http::string_body> req, std::string early) {
    sock_.set_owner(weak_from_this());
    sock_.count_sends_in(&core_->stats.socket_sends);
    sock_.on_room([this] { move_queued(); });
    header_list headers;
    for (auto& f : req)
      headers.emplace_back(std::string{f.name_string()}, std::string{f.value()});
    std::string target{req.target()};
    req_ = std::make_unique<http::request<http::string_body>>(std::move(req));
    partial_ = std::move(early);
    arm_kill_timer(); // a session that never attaches does not pin the socket
    auto actor = make_socket_endpoint(core_->sys, shared_from_this());
    tell(core_->unit, core_->acceptor, accept_atom::value, actor,
                   std::move(target), std::move(headers));
  }

  // Called by the socket's actor, from CAF threads.
  void post_attach(transport_listener_actor l, uint64_t tag) {
    core_->gate.post(sock_.get_executor(),
                     [self = shared_from_this(), l = std::move(l), tag] {
                       self->attach(l, tag);
                     });
  }
  // Frames wait in the server's outbox (one io thread) or in the socket's
  // inbox (a strand per socket), drained together.
  void post_send(shared_frame f) {
    if (core_->one_io_thread())
      return post_to_outbox(std::move(f));
    {
      std::lock_guard<std::mutex> guard{inbox_->mtx};
      inbox_->frames.push_back(std::move(f));
      if (inbox_->frames.size() > 1)
        return; // a drain is already posted
    }
    core_->gate.post(sock_.get_executor(),
                     [self = shared_from_this()] { self->drain_inbox(); });
  }
  void post_close(uint16_t code, std::string reason) {
    core_->gate.post(sock_.get_executor(),
                     [self = shared_from_this(), code, r = std::move(reason)] {
                       self->close(code, r);
                     });
  }

  /// On the socket's io thread, every half ping interval (keepalive_sweep):
  /// a socket silent for an interval is pinged, one silent for two dropped.
  void keepalive();
  void post_keepalive() {
    core_->gate.post(sock_.get_executor(),
                     [self = shared_from_this()] { self->keepalive(); });
  }

  // On the io thread: every frame in the server's outbox goes to its socket.
  static void drain_outbox(server_core& core);

  // With the io threads stopped: ends every pending operation, so that their
  // handlers run (with errors) and release this connection.
  void abort() {
    beast::error_code ignored;
    kill_timer_.reset();
    sock_.socket().close(ignored);
  }

private:
  void post_to_outbox(shared_frame f);
  void attach(transport_listener_actor l, uint64_t tag);
  void on_accept(beast::error_code ec);
  void arm_kill_timer();
  void do_read();
  void on_readable(beast::error_code ec);
  void read_on();
  bool session_busy() const;
  void on_read_failed(beast::error_code ec);
  void consume(char* data, size_t n);
  void drain_inbox();
  void send(const shared_frame& f);
  void write_frame(const shared_frame& f);
  void move_queued();
  void close(uint16_t code, const std::string& reason);
  void do_close();
  void finish();
  void report(uint16_t code, std::string reason);

  // ws::frame_sink: what the client's frames said.
  void on_message(std::string text) override;
  void on_ping(std::string_view payload) override;
  void on_pong() override {} // any byte read counts as a sign of life
  void on_close(uint16_t code, std::string_view reason) override;
  void on_violation(uint16_t code, const char* reason) override;

  std::shared_ptr<server_core> core_;
  detail::coalescing_socket sock_;
  ws::frame_reader reader_;
  // Messages handed to the session per pass over the ready sockets.
  static constexpr size_t batch_messages = 256;
  // The start of a frame whose rest has not arrived (empty while idle), or
  // frames read but not yet parsed (backlog_).
  std::string partial_;
  bool backlog_ = false;
  // The upgrade request and the stream that answers it; both released once
  // the handshake is done.
  std::unique_ptr<http::request<http::string_body>> req_;
  std::unique_ptr<websocket::stream<tcp::socket&>> handshake_;
  // With several io threads: frames from actors, not yet on the strand.
  struct strand_inbox {
    std::mutex mtx;
    std::vector<shared_frame> frames;
    std::vector<shared_frame> drained;
  };
  std::unique_ptr<strand_inbox> inbox_; // null with one io thread (the outbox)
  transport_listener_actor listener_;
  uint64_t tag_ = 0;
  bool attached_ = false;
  bool open_ = false; // handshake completed
  bool reported_ = false;
  uint8_t silent_ticks_ = 0; // keepalive sweeps since the last byte read
  // Set by close(): the socket is closing, with this code and reason.
  std::optional<std::pair<uint16_t, std::string>> pending_close_;
  frame_queue queue_;
  size_t queued_bytes_ = 0;
  // Ends a handshake, a close or a drain the peer lets hang; only while one
  // is under way (an idle socket keeps no timer: 120 bytes).
  std::unique_ptr<net::steady_timer> kill_timer_;
};

/// The transport actor of an accepted socket. Its mailbox is the socket's own
/// inbox on the io thread: a message is handled where it is enqueued (a
/// lock, a push, at most one post), not scheduled on a CAF worker first. It
/// speaks transport_actor and can be monitored like any actor, and weighs a
/// few hundred bytes instead of a scheduled actor's kilobyte.
class socket_endpoint : public caf::monitorable_actor {
public:
  socket_endpoint(caf::actor_config& cfg, std::shared_ptr<ws_conn> c)
    : caf::monitorable_actor(cfg), conn_(std::move(c)) {
  }

  const char* name() const override { return "kullsync.socket"; }

  void enqueue(caf::mailbox_element_ptr ptr, caf::execution_unit*) override {
    auto& m = ptr->content();
    if (m.match_elements<send_atom, shared_frame>()) {
      conn_->post_send(m.get_as<shared_frame>(1));
    } else if (m.match_elements<send_atom, std::string>()) {
      conn_->post_send(make_shared_frame(m.get_as<std::string>(1)));
    } else if (m.match_elements<close_atom, uint16_t, std::string>()) {
      conn_->post_close(m.get_as<uint16_t>(1), m.get_as<std::string>(2));
    } else if (m.match_elements<attach_atom, transport_listener_actor, uint64_t>()) {
      conn_->post_attach(m.get_as<transport_listener_actor>(1), m.get_as<uint64_t>(2));
    } else if (m.match_elements<connect_atom, transport_listener_actor, uint64_t,
                                std::string, header_list>()) {
      caf::anon_send(m.get_as<transport_listener_actor>(1), closed_atom::value,
                     m.get_as<uint64_t>(2), close_code::internal_error,
                     std::string{"an accepted socket cannot dial"});
    }
    // Anything else (exit or down messages of links) has no meaning here.
  }

  void on_destroy() override {
    if (!getf(is_cleaned_up_flag))
      cleanup(caf::exit_reason::normal, nullptr);
    caf::monitorable_actor::on_destroy();
  }

private:
  std::shared_ptr<ws_conn> conn_;
};

transport_actor make_socket_endpoint(caf::actor_system& sys,
                                     std::shared_ptr<ws_conn> c) {
  caf::actor_config cfg;
  auto ptr = caf::make_actor<socket_endpoint, caf::strong_actor_ptr>(
    sys.next_actor_id(), sys.node(), &sys, cfg, std::move(c));
  return caf::actor_cast<transport_actor>(std::move(ptr));
}

void ws_conn::attach(transport_listener_actor l, uint64_t tag) {
  listener_ = std::move(l);
  tag_ = tag;
  attached_ = true;
  if (reported_) { // closed before anyone listened
    tell(core_->unit, listener_, closed_atom::value, tag_, close_code::abnormal,
         std::string{"connection reset"});
    listener_ = nullptr;
    return;
  }
  if (!pending_close_)
    kill_timer_.reset(); // destroying it cancels the wait
  handshake_ = std::make_unique<websocket::stream<tcp::socket&>>(sock_.socket());
  websocket::stream_base::timeout t;
  t.handshake_timeout = core_->opts.handshake_timeout;
  t.idle_timeout = websocket::stream_base::none();
  t.keep_alive_pings = false;
  handshake_->set_option(t);
  handshake_->async_accept(*req_, beast::bind_front_handler(&ws_conn::on_accept,
                                                            shared_from_this()));
}

void ws_conn::arm_kill_timer() {
  if (!kill_timer_)
    kill_timer_ = std::make_unique<net::steady_timer>(sock_.get_executor());
  kill_timer_->expires_after(core_->opts.handshake_timeout);
  kill_timer_->async_wait([self = shared_from_this()](beast::error_code ec) {
    if (ec)
      return; // cancelled: in time
    beast::error_code ignored;
    self->sock_.socket().close(ignored);
  });
}

void ws_conn::on_accept(beast::error_code ec) {
  req_.reset();
  // Beast's operation is not quite done with its stream when it calls us.
  core_->gate.post(sock_.get_executor(),
                   [self = shared_from_this()] { self->handshake_.reset(); });
  if (ec) {
    core_->log->debug("WebSocket handshake failed: {}", ec.message());
    return on_read_failed(ec);
  }
  open_ = true;
  ++core_->stats.sockets_accepted;
  ++core_->stats.sockets_open;
  {
    std::lock_guard<std::mutex> guard{core_->mtx};
    core_->conns.insert(shared_from_this());
  }
  tell(core_->unit, listener_, opened_atom::value, tag_);
  beast::error_code ignored;
  sock_.socket().non_blocking(true, ignored); // reads return would_block
  if (!partial_.empty()) {
    std::string early;
    early.swap(partial_);
    consume(early.data(), early.size());
  }
  read_on();
  // Frames sent while the handshake was pending go out first, in one send.
  sock_.cork();
  move_queued();
  sock_.uncork();
  if (core_->stopping && !pending_close_)
    close(close_code::going_away, "server shutting down");
}

void ws_conn::do_read() {
  sock_.socket().async_wait(tcp::socket::wait_read,
                            beast::bind_front_handler(&ws_conn::on_readable,
                                                      shared_from_this()));
}

// Whatever one socket has to say is read here, at once, and parsed where it
// lies; only the start of an unfinished frame stays with the socket.
void ws_conn::on_readable(beast::error_code ec) {
  if (ec)
    return on_read_failed(ec);
  static thread_local std::unique_ptr<char[]> scratch{new char[64 * 1024]};
  size_t n = sock_.socket().read_some(net::buffer(scratch.get(), 64 * 1024), ec);
  if (ec == net::error::would_block || ec == net::error::try_again)
    return do_read();
  if (ec)
    return on_read_failed(ec);
  silent_ticks_ = 0;
  if (!reader_.done())
    consume(scratch.get(), n);
  read_on(); // after a close or a violation: drained until the peer's FIN
}

// At most `batch_messages` go to the session per pass. A full batch means
// more may wait in `partial_`: they are parsed only once the session has
// handled what it was given, and the socket is read only after that, so a
// client flooding small frames is read no faster than its session handles
// them (TCP pushes back on the client).
void ws_conn::read_on() {
  if (!backlog_)
    return do_read();
  core_->gate.post(sock_.get_executor(), [self = shared_from_this()] {
    if (!self->session_busy())
      self->consume(nullptr, 0);
    self->read_on();
  });
}

// A scheduled actor's mailbox reads as blocked (an atomic flag) only when it
// is empty and the actor waits for the next message.
bool ws_conn::session_busy() const {
  auto* actor = caf::actor_cast<caf::abstract_actor*>(listener_);
  auto* session = dynamic_cast<caf::scheduled_actor*>(actor);
  return session != nullptr && !session->mailbox().blocked();
}

void ws_conn::consume(char* data, size_t n) {
  if (partial_.empty()) {
    size_t used = reader_.parse(data, n, *this, batch_messages);
    if (!reader_.done() && used < n)
      partial_.assign(data + used, n - used);
  } else {
    if (n > 0)
      partial_.append(data, n);
    size_t used = reader_.parse(partial_.data(), partial_.size(), *this, batch_messages);
    partial_.erase(0, reader_.done() ? partial_.size() : used);
    if (partial_.empty())
      std::string{}.swap(partial_); // an idle socket keeps no buffer
  }
  backlog_ = reader_.messages() == batch_messages && !partial_.empty();
}

void ws_conn::on_read_failed(beast::error_code ec) {
  kill_timer_.reset();
  if (pending_close_)
    report(pending_close_->first, pending_close_->second);
  else
    report(close_code::abnormal, ec.message());
  sock_.close_when_sent();
}

void ws_conn::on_message(std::string text) {
  if (pending_close_ || reported_)
    return; // closing: nobody is listening any more
  // Binary frames are read as text, as the legacy server's JSON.parse does.
  tell(core_->unit, listener_, frame_atom::value, tag_, std::move(text));
}

void ws_conn::on_ping(std::string_view payload) {
  sock_.append_frame(ws::opcode::pong, payload); // dropped if the peer is not reading
}

void ws_conn::on_close(uint16_t code, std::string_view reason) {
  report(code, std::string{reason});
  if (!sock_.close_written())
    sock_.append_close(code, {}); // echo the code (RFC 6455 5.5.1)
  finish();
}

void ws_conn::on_violation(uint16_t code, const char* reason) {
  core_->log->info("closing a socket that broke the protocol: {} ({})", reason, code);
  report(code, reason);
  if (!sock_.close_written())
    sock_.append_close(code, reason);
  finish();
}

// Both close frames are out (or the peer failed): the sending side shuts
// down once they are sent, and what the peer still sends is read and dropped
// until its FIN, so that no unread byte turns our close into a reset.
void ws_conn::finish() {
  queue_.clear();
  queued_bytes_ = 0;
  arm_kill_timer();
  sock_.shutdown_when_sent();
}

void ws_conn::keepalive() {
  if (!open_ || reported_ || pending_close_)
    return;
  ++silent_ticks_;
  if (silent_ticks_ == 2) {
    sock_.append_frame(ws::opcode::ping, {});
  } else if (silent_ticks_ >= 4) {
    core_->log->debug("dropping a socket that did not answer a ping");
    report(close_code::abnormal, "ping timeout");
    beast::error_code ignored;
    sock_.socket().close(ignored);
  }
}

void ws_conn::drain_inbox() {
  {
    std::lock_guard<std::mutex> guard{inbox_->mtx};
    inbox_->drained.swap(inbox_->frames);
  }
  auto& drained = inbox_->drained;
  sock_.cork(); // everything drained leaves in one send
  for (auto& f : drained)
    send(f);
  sock_.uncork();
  drained.clear();
  if (drained.capacity() > 64)
    std::vector<shared_frame>{}.swap(drained);
}

/// Each socket is corked from its first frame of the drain until all are
/// in, so its frames of the drain leave in one send, as drain_inbox() does.
void ws_conn::drain_outbox(server_core& core) {
  {
    std::lock_guard<std::mutex> guard{core.outbox_mtx};
    core.drained.swap(core.outbox);
  }
  std::vector<detail::coalescing_socket*> corked;
  for (auto& [conn, frame] : core.drained) {
    auto& sock = conn->sock_;
    if (!sock.corked()) {
      sock.cork();
      corked.push_back(&sock);
    }
    conn->send(frame);
  }
  for (auto* sock : corked)
    sock->uncork();
  core.drained.clear(); // after uncork: the entries keep the sockets alive
}

void ws_conn::post_to_outbox(shared_frame f) {
  {
    std::lock_guard<std::mutex> guard{core_->outbox_mtx};
    if (core_->gate.closed())
      return; // the server has stopped: the entry would keep us alive
    core_->outbox.emplace_back(shared_from_this(), std::move(f));
    if (core_->outbox.size() > 1)
      return; // a drain is posted, or the io thread is busy and will drain
  }
  // On the io thread the loop drains once nothing else is ready
  // (run_one_io_thread); from elsewhere it must be woken.
  if (!core_->ioc.get_executor().running_in_this_thread())
    core_->gate.post(core_->ioc.get_executor(), [core = core_] { drain_outbox(*core); });
}

void ws_conn::write_frame(const shared_frame& f) {
  if (sock_.append_text_frame(f.str()))
    ++core_->stats.frames_written;
}

void ws_conn::send(const shared_frame& f) {
  if (pending_close_ || reported_)
    return;
  if (open_ && queue_.empty() && sock_.has_room())
    return write_frame(f);
  auto& o = core_->opts;
  if (queue_.size() + 1 > o.max_queued_frames
      || queued_bytes_ + f.str().size() > o.max_queued_bytes) {
    ++core_->stats.slow_consumers_closed;
    core_->log->warn("closing a slow consumer: {} frames, {} bytes queued",
                     queue_.size(), queued_bytes_);
    queue_.clear();
    queued_bytes_ = 0;
    close(close_code::policy_violation, "slow consumer");
    // Cut now: the session leaves the hub at once; the close frame follows
    // what the socket already holds if the peer ever reads again.
    report(close_code::policy_violation, "slow consumer");
    return;
  }
  queued_bytes_ += f.str().size();
  queue_.push_back(f);
}

// Frames that waited (for the handshake, or for room in the socket's
// buffer) move into it; a close requested meanwhile follows them.
void ws_conn::move_queued() {
  if (!open_)
    return;
  while (!queue_.empty() && sock_.has_room()) {
    queued_bytes_ -= queue_.front().str().size();
    write_frame(queue_.front());
    queue_.pop_front();
  }
  if (queue_.empty() && pending_close_ && !sock_.close_written())
    do_close();
}

void ws_conn::close(uint16_t code, const std::string& reason) {
  if (pending_close_ || reported_)
    return;
  pending_close_ = {code, reason};
  arm_kill_timer(); // ends a close handshake the peer ignores
  // Not open yet: the handshake completes first. Frames still queued go
  // first; move_queued() closes after them.
  if (open_ && queue_.empty())
    do_close();
}

// Our close frame; the peer's answer ends the handshake (on_close), or the
// kill timer does.
void ws_conn::do_close() {
  sock_.append_close(pending_close_->first, pending_close_->second);
  if (reader_.done())
    finish(); // the peer's close frame (or a violation) came first
}

void ws_conn::report(uint16_t code, std::string reason) {
  if (reported_)
    return;
  reported_ = true;
  if (attached_) {
    tell(core_->unit, listener_, closed_atom::value, tag_, code, std::move(reason));
    listener_ = nullptr;
  }
  if (!open_)
    return;
  --core_->stats.sockets_open;
  std::lock_guard<std::mutex> guard{core_->mtx};
  core_->conns.erase(shared_from_this());
}

/// The io thread's loop when it serves every socket alone. The outbox is
/// drained when nothing else is ready: every frame that one pass over the
/// ready sockets produced for a socket leaves in one send, while a quiet
/// server still sends at once. A pass is not cut short: a read's frames
/// reach the hub through the session's turn, posted behind the handlers
/// already queued, so a user's updates read together are routed together
/// only by the pass's end. Under overload that never goes idle, a drain
/// every `drain_every` handlers (a few ms) bounds how long frames wait.
void run_one_io_thread(server_core& core) {
  constexpr size_t drain_every = 4096;
  size_t ran = 0;
  while (!core.ioc.stopped()) {
    if (core.ioc.poll_one() > 0 && ++ran < drain_every)
      continue;
    ran = 0;
    if (!core.outbox_empty())
      ws_conn::drain_outbox(core);
    else if (core.ioc.run_one() == 0)
      break; // stopped, or out of work
  }
}

// -- HTTP -------------------------------------------------------------------------

class http_conn : public std::enable_shared_from_this<http_conn> {
public:
  http_conn(std::shared_ptr<server_core> core, tcp::socket&& s)
    : core_(std::move(core)), stream_(std::move(s)) {
  }

  void start() { do_read(); }

private:
  void do_read() {
    parser_.emplace();
    parser_->body_limit(core_->opts.max_http_body);
    parser_->header_limit(16 * 1024);
    stream_.expires_after(core_->opts.handshake_timeout);
    http::async_read(stream_, buf_, *parser_,
                     beast::bind_front_handler(&http_conn::on_read,
                                               shared_from_this()));
  }

  void on_read(beast::error_code ec, size_t) {
    if (ec == http::error::end_of_stream) {
      stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
      return;
    }
    if (ec == http::error::body_limit) {
      return write({413, R"({"error":"Request body too large"})"}, 11, false);
    }
    if (ec)
      return; // timeout or garbage: drop the connection
    auto req = parser_->release();
    if (websocket::is_upgrade(req)) {
      auto path = std::string{req.target()}.substr(0, req.target().find('?'));
      if (path != core_->opts.ws_path)
        return write({404, R"({"error":"Not found"})"}, req.version(), false);
      auto early = beast::buffers_to_string(buf_.data());
      std::make_shared<ws_conn>(core_, stream_.release_socket())
        ->do_accept(std::move(req), std::move(early));
      return;
    }
    ++core_->stats.http_requests;
    http_exchange ex;
    ex.request.method = std::string{req.method_string()};
    ex.request.target = std::string{req.target()};
    ex.request.body = std::move(req.body());
    for (auto& f : req)
      ex.request.headers.emplace_back(std::string{f.name_string()},
                                      std::string{f.value()});
    auto version = req.version();
    auto keep_alive = req.keep_alive();
    ex.responder = std::make_shared<std::function<void(http_response)>>(
      [self = shared_from_this(), version, keep_alive](http_response r) {
        self->core_->gate.post(self->stream_.get_executor(),
                               [self, r = std::move(r), version, keep_alive]() mutable {
                                 self->write(std::move(r), version, keep_alive);
                               });
      });
    stream_.expires_never(); // the actor answers; the responder keeps us alive
    tell(core_->unit, core_->http, http_atom::value, std::move(ex));
  }

  void write(http_response r, unsigned version, bool keep_alive) {
    res_.emplace(static_cast<http::status>(r.status), version);
    res_->set(http::field::server, "kullsync");
    res_->set(http::field::content_type, r.content_type);
    res_->keep_alive(keep_alive);
    res_->body() = std::move(r.body);
    res_->prepare_payload();
    stream_.expires_after(core_->opts.handshake_timeout);
    http::async_write(stream_, *res_,
                      [self = shared_from_this(), keep_alive](beast::error_code ec,
                                                              size_t) {
                        if (ec || !keep_alive) {
                          beast::error_code ignored;
                          self->stream_.socket().shutdown(tcp::socket::shutdown_send,
                                                          ignored);
                          return;
                        }
                        self->do_read();
                      });
  }

  std::shared_ptr<server_core> core_;
  beast::tcp_stream stream_;
  beast::flat_buffer buf_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::optional<http::response<http::string_body>> res_;
};

} // namespace

// -- the server -------------------------------------------------------------------

struct beast_server::impl : std::enable_shared_from_this<beast_server::impl> {
  std::shared_ptr<server_core> core;
  net::io_context& ioc;
  tcp::acceptor acceptor;
  net::steady_timer keepalive_timer;
  std::vector<std::thread> threads;

  impl(caf::actor_system& sys, beast_server_options o, acceptor_actor a,
       http_handler_actor h)
    : core(std::make_shared<server_core>(sys, std::move(o), std::move(a),
                                         std::move(h))),
      ioc(core->ioc), acceptor(core->ioc), keepalive_timer(core->ioc) {
  }

  // One timer for every socket instead of one each: every half ping
  // interval each open socket counts the sweeps it stayed silent.
  void keepalive_sweep() {
    if (core->opts.ping_interval.count() <= 0)
      return; // no protocol pings
    keepalive_timer.expires_after(
      std::chrono::milliseconds{core->opts.ping_interval} / 2);
    keepalive_timer.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (ec || self->core->stopping)
        return;
      std::vector<std::shared_ptr<ws_conn>> open;
      {
        std::lock_guard<std::mutex> guard{self->core->mtx};
        open.assign(self->core->conns.begin(), self->core->conns.end());
      }
      for (auto& c : open) {
        if (self->core->one_io_thread())
          c->keepalive();
        else
          c->post_keepalive();
      }
      self->keepalive_sweep();
    });
  }

  void do_accept() {
    // With one io thread every handler already runs in order; a strand per
    // socket would only add a lock and a hop to each of them.
    auto exec = core->one_io_thread()
                  ? net::any_io_executor{ioc.get_executor()}
                  : net::any_io_executor{net::make_strand(ioc)};
    acceptor.async_accept(exec,
                          [self = shared_from_this()](beast::error_code ec,
                                                      tcp::socket s) {
                            self->on_accept(ec, std::move(s));
                          });
  }

  void on_accept(beast::error_code ec, tcp::socket s) {
    if (ec == net::error::operation_aborted || core->stopping)
      return;
    if (ec) {
      // Out of descriptors and the like: log, breathe, keep accepting.
      core->log->warn("accept failed: {}", ec.message());
    } else {
      // kullsync gathers a socket's frames itself; Nagle's algorithm would
      // hold a small send back until the previous one is acknowledged, and
      // the client delays that ACK by up to 40 ms.
      beast::error_code ignored;
      s.set_option(tcp::no_delay(true), ignored);
      std::make_shared<http_conn>(core, std::move(s))->start();
    }
    do_accept();
  }
};

beast_server::beast_server(caf::actor_system& sys, beast_server_options opts,
                           acceptor_actor acceptor, http_handler_actor http)
  : impl_(std::make_shared<impl>(sys, std::move(opts), std::move(acceptor),
                                 std::move(http))) {
}

beast_server::~beast_server() {
  stop(std::chrono::milliseconds{0});
}

uint16_t beast_server::start() {
  auto& o = impl_->core->opts;
  auto addr = net::ip::make_address(o.host);
  tcp::endpoint ep{addr, o.port};
  auto& acc = impl_->acceptor;
  acc.open(ep.protocol());
  acc.set_option(net::socket_base::reuse_address(true));
  acc.bind(ep);
  acc.listen(net::socket_base::max_listen_connections);
  auto port = acc.local_endpoint().port();
  impl_->do_accept();
  impl_->keepalive_sweep();
  for (size_t i = 0; i < std::max<size_t>(1, o.io_threads); ++i)
    impl_->threads.emplace_back([p = impl_] {
      if (p->core->one_io_thread())
        run_one_io_thread(*p->core);
      else
        p->ioc.run();
    });
  impl_->core->log->info("listening on {}:{} (WebSocket path {})", o.host, port,
                         o.ws_path);
  return port;
}

void beast_server::stop(std::chrono::milliseconds grace) {
  auto& core = *impl_->core;
  if (impl_->threads.empty())
    return;
  if (!core.stopping.exchange(true)) {
    net::post(impl_->ioc, [p = impl_] {
      beast::error_code ignored;
      p->acceptor.close(ignored);
      p->keepalive_timer.cancel();
    });
    std::vector<std::shared_ptr<ws_conn>> open;
    {
      std::lock_guard<std::mutex> guard{core.mtx};
      open.assign(core.conns.begin(), core.conns.end());
    }
    for (auto& c : open)
      c->post_close(close_code::going_away, "server shutting down");
    auto deadline = std::chrono::steady_clock::now() + grace;
    while (std::chrono::steady_clock::now() < deadline) {
      {
        std::lock_guard<std::mutex> guard{core.mtx};
        if (core.conns.empty())
          break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds{10});
    }
  }
  impl_->ioc.stop();
  for (auto& t : impl_->threads)
    if (t.joinable())
      t.join();
  impl_->threads.clear();
  // Pending handlers hold their connections, and connections hold the core:
  // abort what is left and run the aborted handlers here, so that nothing
  // (io_context, acceptor and HTTP actor handles) outlives the server.
  {
    std::lock_guard<std::mutex> guard{core.mtx};
    core.conns.clear();
    // Under the lock: a connection whose last handle a CAF thread drops now
    // waits in its destructor until this is done.
    for (auto* c : core.live)
      c->abort();
  }
  beast::error_code ignored;
  impl_->acceptor.close(ignored);
  impl_->ioc.restart();
  impl_->ioc.poll();
  // From now on nothing is posted here (io_gate); run what came meanwhile.
  core.gate.close();
  impl_->ioc.restart();
  impl_->ioc.poll();
  // Frames for sockets that are gone: their entries hold the connections.
  // (post_to_outbox reads the gate under this lock, so none come after.)
  std::lock_guard<std::mutex> guard{core.outbox_mtx};
  core.outbox.clear();
}

beast_server_stats beast_server::stats() const {
  auto& c = impl_->core->stats;
  beast_server_stats s;
  s.sockets_open = c.sockets_open;
  s.sockets_accepted = c.sockets_accepted;
  s.slow_consumers_closed = c.slow_consumers_closed;
  s.http_requests = c.http_requests;
  s.socket_sends = c.socket_sends;
  s.frames_written = c.frames_written;
  s.actor_turns_on_io = c.actor_turns_on_io;
  return s;
}

} // namespace kullsync
