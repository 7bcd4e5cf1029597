#include "ws_connection.hpp"

#include <cassert>

#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/websocket.hpp>

#include "kullsync/transports/subprotocol.hpp"
#include "socket_endpoint.hpp"

namespace kullsync::detail {

namespace beast = boost::beast;
namespace websocket = beast::websocket;

namespace {

bool legal(ws_connection::phase from, ws_connection::phase to) {
  using p = ws_connection::phase;
  switch (from) {
    case p::handshaking:
      return to == p::open || to == p::closed;
    case p::open:
      return to == p::closing || to == p::closed;
    case p::closing:
      return to == p::closed;
    case p::closed:
      return false;
  }
  return false;
}

} // namespace

struct ws_connection::handshake {
  upgrade_request req;
  std::optional<websocket::stream<io_socket&>> stream;
  std::string protocol; // the subprotocol agreed on
};

ws_connection::ws_connection(std::shared_ptr<server_core> core, io_shard& shard,
                             io_socket&& socket)
  : core_(std::move(core)), shard_(shard), sock_(std::move(socket)),
    reader_(core_->opts.max_frame_bytes) {
  std::lock_guard<std::mutex> guard{shard_.mtx};
  shard_.live.insert(this);
}

ws_connection::~ws_connection() {
  core_->unfinished_bytes -= held_;
  core_->stats.queued_bytes -= queued_bytes_;
  std::lock_guard<std::mutex> guard{shard_.mtx};
  shard_.live.erase(this);
}

void ws_connection::enter(phase next) {
  assert(legal(phase_, next));
  bool was_open = phase_ == phase::open || phase_ == phase::closing;
  phase_ = next;
  if (next == phase::open) {
    ++core_->stats.sockets_accepted;
    ++core_->stats.sockets_open;
    shard_.add_open(shared_from_this());
  } else if (next == phase::closed && was_open) {
    --core_->stats.sockets_open;
    shard_.remove_open(*this);
  }
}

void ws_connection::start(upgrade_request req, std::string early, std::string peer) {
  sock_.set_owner(weak_from_this());
  sock_.count_sends_in(&core_->stats.socket_sends);
  sock_.on_room([this] { move_queued(); });
  header_list headers;
  for (auto& f : req)
    headers.emplace_back(std::string{f.name_string()}, std::string{f.value()});
  std::string target{req.target()};
  handshake_ = std::make_unique<handshake>();
  handshake_->req = std::move(req);
  partial_ = std::move(early);
  arm_kill_timer(); // a session that never attaches does not pin the socket
  auto actor = make_socket_endpoint(core_->sys, shared_from_this());
  tell(shard_.unit, core_->acceptor, accept_atom::value, actor, std::move(target),
       std::move(headers), std::move(peer));
}

// -- from the socket's actor -------------------------------------------------

void ws_connection::post_attach(transport_listener_actor l, uint64_t tag,
                                std::string protocol) {
  core_->gate.post(shard_.ioc, [self = shared_from_this(), l = std::move(l), tag,
                                p = std::move(protocol)] { self->attach(l, tag, p); });
}

void ws_connection::post_send(shared_frame f) {
  shard_.send(shared_from_this(), std::move(f));
}

void ws_connection::post_credit(uint64_t tag, uint32_t n) {
  // The session usually runs on this io thread: no need to post.
  if (shard_.on_this_thread())
    return on_credit(tag, n);
  core_->gate.post(shard_.ioc, [self = shared_from_this(), tag, n] {
    self->on_credit(tag, n);
  });
}

void ws_connection::post_close(uint16_t code, std::string reason) {
  shard_.close(shared_from_this(), code, std::move(reason));
}

// -- handshake ---------------------------------------------------------------

void ws_connection::attach(transport_listener_actor l, uint64_t tag,
                           const std::string& protocol) {
  listener_ = std::move(l);
  tag_ = tag;
  credit_ = flow::window;
  if (phase_ == phase::closed) { // the socket died before anyone listened
    tell(shard_.unit, listener_, closed_atom::value, tag_, close_code::abnormal,
         std::string{"connection reset"});
    listener_ = nullptr;
    return;
  }
  if (!our_close_)
    kill_timer_.reset(); // Beast's handshake timeout takes over
  auto& h = *handshake_;
  if (offers_subprotocol(h.req[http::field::sec_websocket_protocol], protocol))
    h.protocol = protocol;
  versioned_ = !h.protocol.empty();
  auto& ws = h.stream.emplace(sock_.socket());
  websocket::stream_base::timeout t;
  t.handshake_timeout = core_->opts.handshake_timeout;
  t.idle_timeout = websocket::stream_base::none();
  t.keep_alive_pings = false;
  ws.set_option(t);
  if (versioned_)
    ws.set_option(websocket::stream_base::decorator(
      [p = h.protocol](websocket::response_type& res) {
        res.set(http::field::sec_websocket_protocol, p);
      }));
  ws.async_accept(h.req, beast::bind_front_handler(&ws_connection::on_handshake,
                                                   shared_from_this()));
}

void ws_connection::arm_kill_timer() {
  if (!kill_timer_)
    kill_timer_ = std::make_unique<net::steady_timer>(sock_.get_executor());
  kill_timer_->expires_after(core_->opts.handshake_timeout);
  kill_timer_->async_wait([self = shared_from_this()](beast::error_code ec) {
    if (ec)
      return; // cancelled: in time
    beast::error_code ignored;
    self->sock_.socket().close(ignored); // the pending operation fails
  });
}

void ws_connection::on_handshake(beast::error_code ec) {
  auto protocol = std::move(handshake_->protocol);
  // Beast's operation is not quite done with its stream when it calls us.
  core_->gate.post(shard_.ioc, [self = shared_from_this()] { self->handshake_.reset(); });
  if (ec) {
    core_->log->debug("WebSocket handshake failed: {}", ec.message());
    return end(close_code::abnormal, ec.message(), ending::drop);
  }
  enter(phase::open);
  tell(shard_.unit, listener_, opened_atom::value, tag_, std::move(protocol));
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
  if (our_close_) {
    auto asked = std::move(our_close_);
    close(asked->first, std::move(asked->second));
  } else if (core_->stopping) {
    close(close_code::going_away, "server shutting down");
  }
}

// -- reading -----------------------------------------------------------------

void ws_connection::read_on() {
  if (reading_ || stalled_)
    return; // stalled: the session's credit resumes reading
  if (phase_ == phase::closed && !sock_.socket().is_open())
    return; // nothing left to hear; a socket the kill timer closed before
            // its connection ended still waits, fails, and so ends
  reading_ = true;
  sock_.socket().async_wait(tcp::socket::wait_read,
                            beast::bind_front_handler(&ws_connection::on_readable,
                                                      shared_from_this()));
}

// Whatever one socket has to say is read here, at once, and parsed where it
// lies; only the start of an unfinished frame stays with the socket.
void ws_connection::on_readable(beast::error_code ec) {
  reading_ = false;
  size_t n = 0;
  if (!ec) {
    static thread_local std::unique_ptr<char[]> scratch{new char[64 * 1024]};
    n = sock_.socket().read_some(net::buffer(scratch.get(), 64 * 1024), ec);
    if (ec == net::error::would_block || ec == net::error::try_again)
      return read_on();
    if (!ec) {
      if (!reader_.done())
        consume(scratch.get(), n);
      return read_on(); // after a close or a violation: drained until the FIN
    }
  }
  if (phase_ == phase::closing && our_close_)
    end(our_close_->first, our_close_->second, ending::drop);
  else
    end(close_code::abnormal, ec.message(), ending::drop);
}

// Messages go to the session as far as its credit reaches, what one pass
// parsed as one batch. Without credit the socket is not read: a client
// flooding small frames is read no faster than its session handles them, and
// TCP pushes back on it. Once closing, frames are parsed (for the peer's close
// frame) and their messages dropped.
void ws_connection::consume(char* data, size_t n) {
  size_t limit = phase_ == phase::open ? credit_ : SIZE_MAX;
  frame_batch batch;
  batch_ = &batch;
  if (partial_.empty()) {
    size_t used = reader_.parse(data, n, *this, limit);
    if (!reader_.done() && used < n)
      partial_.assign(data + used, n - used);
  } else {
    if (n > 0)
      partial_.append(data, n);
    size_t used = reader_.parse(partial_.data(), partial_.size(), *this, limit);
    partial_.erase(0, reader_.done() ? partial_.size() : used);
    if (partial_.empty())
      std::string{}.swap(partial_); // an idle socket keeps no buffer
  }
  hand_over();
  batch_ = nullptr;
  stalled_ = phase_ == phase::open && credit_ == 0;
  stalled_since_ping_ = stalled_since_ping_ || stalled_;
  account_held();
}

// The messages parsed so far in this pass go to the session: at the pass's
// end, or before the session hears that the socket ended within it (a
// client's last message and its close frame often come in one read).
void ws_connection::hand_over() {
  if (batch_ == nullptr || batch_->empty() || !listener_)
    return;
  credit_ -= static_cast<uint32_t>(batch_->size());
  tell(shard_.unit, listener_, frame_atom::value, tag_, std::move(*batch_));
  batch_->clear();
}

bool ws_connection::unfinished() const {
  // Complete frames waiting for credit are the session's delay, not the peer's.
  return reader_.mid_message() || (!partial_.empty() && !stalled_);
}

bool ws_connection::account_held() {
  // An empty buffer holds nothing unfinished (its inline bytes are no heap).
  size_t now = reader_.done() ? 0 : (partial_.empty() ? 0 : partial_.capacity()) + reader_.held();
  if (now == held_)
    return true;
  core_->unfinished_bytes += now;
  core_->unfinished_bytes -= held_;
  held_ = now;
  if (now == 0 || core_->unfinished_bytes <= core_->opts.max_unfinished_bytes)
    return true;
  ++core_->stats.slow_messages_closed;
  core_->log->warn("unfinished messages hold over {} MiB: a socket holding {} KiB cut",
                   core_->opts.max_unfinished_bytes >> 20, now >> 10);
  end(close_code::policy_violation, "Server busy: unfinished messages over the limit",
      ending::echo);
  return false;
}

void ws_connection::on_credit(uint64_t tag, uint32_t n) {
  if (tag != tag_ || phase_ == phase::closed)
    return;
  credit_ = std::min<uint32_t>(flow::window, credit_ + n);
  if (!stalled_)
    return;
  stalled_ = false;
  consume(nullptr, 0);
  read_on();
}

void ws_connection::on_message(std::string text) {
  ++messages_in_;
  // Binary frames are read as text, as the legacy server's JSON.parse does.
  if (phase_ == phase::open && batch_ != nullptr)
    batch_->push_back(std::move(text));
}

void ws_connection::on_ping(std::string_view payload) {
  sock_.append_frame(ws::opcode::pong, payload); // dropped if the peer is not reading
}

// The peer's close frame ends what it sends (RFC 6455 5.5.1), so nothing is
// left to read: the server closes the TCP connection at once after its own
// close frame (echoing the code), without waiting for the peer's FIN.
void ws_connection::on_close(uint16_t code, std::string_view reason) {
  end(code, std::string{reason}, ending::both);
}

void ws_connection::on_violation(uint16_t code, const char* reason) {
  core_->log->info("closing a socket that broke the protocol: {} ({})", reason, code);
  end(code, reason, ending::echo);
}

// -- writing -----------------------------------------------------------------

void ws_connection::write_frame(const shared_frame& f) {
  if (sock_.append_text_frame(f.str())) {
    ++core_->stats.frames_written;
    auto n = f.str().size();
    core_->stats.bytes_written += n + (n < 126 ? 2 : n < 65536 ? 4 : 10);
  }
}

void ws_connection::send(const shared_frame& f) {
  if (our_close_ || phase_ == phase::closing || phase_ == phase::closed)
    return;
  if (phase_ == phase::open && queue_.empty() && sock_.has_room())
    return write_frame(f);
  auto& o = core_->opts;
  if (queue_.size() + 1 > o.max_queued_frames
      || queued_bytes_ + f.str().size() > o.max_queued_bytes) {
    ++core_->stats.slow_consumers_closed;
    core_->log->warn("closing a slow consumer: {} frames, {} bytes queued",
                     queue_.size(), queued_bytes_);
    // Cut now: the session leaves the hub at once; the close frame follows
    // what the socket already holds if the peer ever reads again. A link
    // with a versioned subprotocol (kull.v2) can resume: its stream was
    // interrupted (4009); a v1 link was cut by policy (1008).
    auto code = versioned_ ? close_code::stream_interrupted : close_code::policy_violation;
    return end(code, "slow consumer", phase_ == phase::open ? ending::echo : ending::drop);
  }
  queued_bytes_ += f.str().size();
  core_->stats.queued_bytes += f.str().size();
  queue_.push_back(f);
}

// Frames that waited (for the handshake, or for room in the socket's
// buffer) move into it; while closing, our close frame follows them.
void ws_connection::move_queued() {
  if (phase_ == phase::handshaking || phase_ == phase::closed)
    return;
  while (!queue_.empty() && sock_.has_room()) {
    queued_bytes_ -= queue_.front().str().size();
    core_->stats.queued_bytes -= queue_.front().str().size();
    write_frame(queue_.front());
    queue_.pop_front();
  }
  if (phase_ == phase::closing && queue_.empty() && !sock_.close_written())
    sock_.append_close(our_close_->first, our_close_->second);
}

// -- closing -----------------------------------------------------------------

void ws_connection::close(uint16_t code, std::string reason) {
  if (our_close_ || phase_ == phase::closing || phase_ == phase::closed)
    return;
  our_close_ = std::make_unique<std::pair<uint16_t, std::string>>(code, std::move(reason));
  arm_kill_timer(); // ends a close handshake the peer ignores
  if (phase_ != phase::open)
    return; // on_handshake opens first, then closes
  enter(phase::closing);
  move_queued(); // our close frame goes after the frames queued before it
}

void ws_connection::end(uint16_t code, std::string reason, ending how) {
  if (phase_ != phase::closed) {
    enter(phase::closed);
    if (listener_) {
      hand_over();
      tell(shard_.unit, listener_, closed_atom::value, tag_, code, reason);
      listener_ = nullptr;
    }
  }
  switch (how) {
    case ending::echo:
    case ending::both:
      if (!sock_.close_written())
        sock_.append_close(code, reason);
      finish(how);
      break;
    case ending::drop:
      close_when_sent();
      break;
    case ending::abort: {
      kill_timer_.reset();
      beast::error_code ignored;
      sock_.socket().close(ignored);
      break;
    }
  }
}

// Our close frame is out. After the peer's close frame there is nothing
// more to read, and the socket closes once ours is sent. Otherwise (we cut a
// peer that may still be sending) the sending side shuts down once it is
// sent, and what the peer still sends is read and dropped until its FIN, so
// that no unread byte turns our close into a reset. The kill timer ends a
// send or a FIN the peer never lets through.
void ws_connection::finish(ending how) {
  queue_.clear();
  core_->stats.queued_bytes -= queued_bytes_;
  queued_bytes_ = 0;
  if (how == ending::both)
    return close_when_sent();
  arm_kill_timer();
  sock_.shutdown_when_sent();
}

// The socket closes once what it owes is sent; a peer that never reads
// that (even one that sent its FIN) is closed on by the kill timer.
void ws_connection::close_when_sent() {
  sock_.close_when_sent();
  if (sock_.socket().is_open())
    arm_kill_timer();
  else
    kill_timer_.reset(); // nothing left to end: the connection goes now
}

// Called by the shard's sweep, which holds no handle to the socket: a
// socket that ends here holds itself until it returns.
void ws_connection::keepalive() {
  if (phase_ != phase::open)
    return;
  sock_.release_buffers();
  // A message must complete within two sweeps (one ping interval): a peer
  // trickling a large one must not hold its memory for ever.
  if (unfinished() && messages_in_ == messages_at_sweep_) {
    if (++unfinished_ticks_ >= 2) {
      ++core_->stats.slow_messages_closed;
      core_->log->debug("dropping a socket whose message did not complete in time");
      auto self = shared_from_this();
      return end(close_code::policy_violation, "Message took too long", ending::echo);
    }
  } else {
    unfinished_ticks_ = 0;
  }
  messages_at_sweep_ = messages_in_;
  // A ping every interval, to busy sockets too: a client may take the
  // server's pings as its own proof that the link lives (the contract says
  // one comes every interval). As the contract says, a socket that has not
  // answered the previous ping (with a pong: other messages are no answer)
  // is terminated; not when the server itself stopped reading it for want
  // of credit since, nor when that ping found the send buffer full and was
  // never sent (a slow reader is the slow-consumer rule's, not this one's).
  if (++ping_ticks_ >= 2) {
    ping_ticks_ = 0;
    if (ping_unanswered_ && !stalled_since_ping_ && !stalled_) {
      core_->log->debug("dropping a socket that did not answer a ping");
      auto self = shared_from_this();
      return end(close_code::abnormal, "ping timeout", ending::abort);
    }
    stalled_since_ping_ = false;
    ping_unanswered_ = sock_.append_frame(ws::opcode::ping, {});
    // A peer that took nothing of a full buffer for two intervals (a dead
    // one behind a half-open link, unanswerable pings or none) goes too.
    unsent_pings_ = ping_unanswered_ ? 0 : unsent_pings_ + 1;
    if (unsent_pings_ >= 3) {
      core_->log->debug("dropping a socket that read nothing for two ping intervals");
      auto self = shared_from_this();
      return end(close_code::abnormal, "ping timeout (not reading)", ending::abort);
    }
  }
}

void ws_connection::abort() {
  beast::error_code ignored;
  kill_timer_.reset();
  sock_.socket().close(ignored);
}

} // namespace kullsync::detail
