#pragma once

// Private to the Beast translation units of kullsync_transports.
//
// A TCP socket for the layer under websocket::stream whose writes are
// gathered: each write copies its bytes into an output buffer and completes at
// once, and the buffer goes to the kernel with one send when no send is in
// flight and nobody holds the cork. While the owner drains a queue of frames it
// holds the cork, so every frame of that queue leaves in one syscall; an idle
// socket's single frame leaves at once. Under load frames pile up behind the
// send in flight and go out together (adaptive batching). Data, control and
// close frames all pass through here in order; the teardown after a close frame
// waits until everything before it was sent. The owner appends its data frames
// directly (append_text_frame: no Beast write operation per frame); Beast's own
// control frames come through async_write_some. The buffer is bounded: past
// `max_buffered` bytes the owner keeps frames in its queue (has_room, on_room)
// and a Beast write completes only when the send in flight ends, so a slow
// reader backs up into its owner's queue, which cuts it.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <type_traits>
#include <string>
#include <utility>

#include <boost/asio/async_result.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/websocket/teardown.hpp>

#include "kullsync/transports/ws_frame.hpp"

namespace kullsync::detail {

class coalescing_socket {
public:
  using socket_type = boost::asio::ip::tcp::socket;
  using next_layer_type = socket_type;
  using executor_type = socket_type::executor_type;
  using error_code = boost::beast::error_code;

  /// Bytes gathered under the cork before they are sent anyway, and the bound
  /// past which writers wait for the send in flight.
  static constexpr size_t flush_bytes = 16 * 1024;
  static constexpr size_t max_buffered = 64 * 1024;

  explicit coalescing_socket(socket_type&& s) : socket_(std::move(s)) {
  }

  /// Sends in flight keep `owner` alive (the object this socket lives in).
  void set_owner(std::weak_ptr<void> owner) { owner_ = std::move(owner); }

  executor_type get_executor() noexcept { return socket_.get_executor(); }
  socket_type& next_layer() noexcept { return socket_; }

  /// Holds sends back until uncork(), or until `flush_bytes` are gathered.
  void cork() { corked_ = true; }
  bool corked() const { return corked_; }
  void uncork() {
    corked_ = false;
    maybe_send();
  }

  /// Counts each send (one async_write of the whole buffer) in `*c`.
  void count_sends_in(std::atomic<uint64_t>* c) { sends_ = c; }

  /// Appends one complete, unmasked text frame (RFC 6455 5.2, as a server
  /// sends it) without a write operation of Beast's: no handler, no post per
  /// frame. Beast's own frames (ping, pong, close) still come through
  /// async_write_some; both append in call order on the socket's io thread
  /// (or strand), so frames never interleave. The caller keeps to
  /// `has_room()` (frames that do not fit wait in its queue) and stops before
  /// Beast's close frame.
  /// Returns false, sending nothing, once a close frame was written or the
  /// socket failed: no data frame may follow a close frame.
  bool append_text_frame(const std::string& payload) {
    if (close_written_ || error_)
      return false;
    unsigned char head[ws::max_frame_header];
    auto len = ws::write_frame_header(head, 0x1, payload.size(), false); // text
    pending_.append(reinterpret_cast<const char*>(head), len);
    pending_.append(payload);
    maybe_send();
    return true;
  }

  /// False while `max_buffered` bytes wait (behind a send in flight).
  bool has_room() const { return pending_.size() < max_buffered; }

  /// Called after each completed send, before the next one starts: the
  /// owner moves frames that waited for room.
  void on_room(std::function<void()> f) { on_room_ = std::move(f); }

  template <class MutableBufferSequence, class ReadHandler>
  auto async_read_some(const MutableBufferSequence& b, ReadHandler&& h) {
    return socket_.async_read_some(b, std::forward<ReadHandler>(h));
  }

  template <class ConstBufferSequence, class WriteHandler>
  auto async_write_some(const ConstBufferSequence& b, WriteHandler&& h) {
    return boost::asio::async_initiate<WriteHandler, void(error_code, size_t)>(
      [this](auto handler, const ConstBufferSequence& bufs) {
        initiate_write(std::move(handler), bufs);
      },
      h, b);
  }

  friend void teardown(boost::beast::role_type role, coalescing_socket& s,
                       error_code& ec) {
    using boost::beast::websocket::teardown;
    teardown(role, s.socket_, ec);
  }

  template <class TeardownHandler>
  friend void async_teardown(boost::beast::role_type role, coalescing_socket& s,
                             TeardownHandler&& h) {
    using handler_type = std::decay_t<TeardownHandler>;
    s.teardown_ = make_pending<void(socket_type&)>(
      std::forward<TeardownHandler>(h),
      [role](handler_type& handler, socket_type& sock) {
        using boost::beast::websocket::async_teardown;
        async_teardown(role, sock, std::move(handler));
      });
    s.corked_ = false;
    s.maybe_send();
  }

private:
  // A move-only handler with what to do with it, behind one virtual call
  // (asio's any_completion_handler cannot be posted in Boost 1.81).
  template <class Sig>
  struct pending_base;
  template <class... Args>
  struct pending_base<void(Args...)> {
    virtual ~pending_base() = default;
    virtual void run(Args... args) = 0;
  };
  template <class Sig, class Handler, class Action>
  struct pending;
  template <class Handler, class Action, class... Args>
  struct pending<void(Args...), Handler, Action> : pending_base<void(Args...)> {
    template <class H>
    pending(H&& h, Action a) : handler(std::forward<H>(h)), act(std::move(a)) {
    }
    void run(Args... args) override { act(handler, args...); }
    Handler handler;
    Action act;
  };
  template <class Sig, class Handler, class Action>
  static auto make_pending(Handler&& h, Action a) {
    using type = pending<Sig, std::decay_t<Handler>, Action>;
    return std::make_unique<type>(std::forward<Handler>(h), std::move(a));
  }

  template <class Handler, class Buffers>
  void initiate_write(Handler handler, const Buffers& bufs) {
    auto n = boost::asio::buffer_size(bufs);
    if (error_) {
      boost::asio::post(get_executor(),
                        boost::beast::bind_front_handler(std::move(handler), error_,
                                                         size_t{0}));
      return;
    }
    auto old = pending_.size();
    pending_.resize(old + n);
    boost::asio::buffer_copy(boost::asio::buffer(&pending_[old], n), bufs);
    // Beast writes each frame with one write. 0x88: FIN + close opcode (a
    // control frame is never fragmented; no extension sets RSV bits). The
    // handshake's response starts with 'H' (0x48).
    if (n > 0 && static_cast<unsigned char>(pending_[old]) == 0x88)
      close_written_ = true;
    if (sending_ && pending_.size() >= max_buffered) {
      held_ = make_pending<void(error_code, size_t)>(
        std::move(handler), [ex = get_executor()](Handler& h, error_code ec, size_t n) {
          boost::asio::post(ex, boost::beast::bind_front_handler(std::move(h), ec, n));
        });
      held_bytes_ = n;
      return;
    }
    boost::asio::post(get_executor(),
                      boost::beast::bind_front_handler(std::move(handler),
                                                       error_code{}, n));
    maybe_send();
  }

  void maybe_send() {
    if (sending_)
      return;
    if (pending_.empty()) {
      if (teardown_)
        start_teardown();
      return;
    }
    if (corked_ && pending_.size() < flush_bytes && !teardown_)
      return;
    sending_ = true;
    if (sends_ != nullptr)
      sends_->fetch_add(1, std::memory_order_relaxed);
    std::swap(pending_, inflight_);
    boost::asio::async_write(socket_, boost::asio::buffer(inflight_),
                             [this, keep = owner_.lock()](error_code ec, size_t) {
                               on_sent(ec);
                             });
  }

  void on_sent(error_code ec) {
    sending_ = false;
    inflight_.clear();
    if (inflight_.capacity() > flush_bytes)
      std::string{}.swap(inflight_); // an idle socket keeps no large buffer
    if (ec && !error_)
      error_ = ec;
    if (held_) {
      auto h = std::move(held_);
      h->run(error_, error_ ? 0 : held_bytes_);
    }
    if (error_) {
      pending_.clear();
      if (teardown_)
        start_teardown();
      return;
    }
    if (on_room_ && !teardown_) {
      corked_ = true; // whatever the owner adds now leaves in one send
      on_room_();
      corked_ = false;
    }
    maybe_send();
  }

  void start_teardown() {
    auto t = std::move(teardown_);
    t->run(socket_);
  }

  socket_type socket_;
  std::weak_ptr<void> owner_;
  std::string pending_;  // gathered, not yet sent
  std::string inflight_; // handed to the kernel by the send in flight
  bool corked_ = false;
  bool sending_ = false;
  bool close_written_ = false;
  error_code error_;
  std::unique_ptr<pending_base<void(error_code, size_t)>> held_;
  size_t held_bytes_ = 0;
  std::unique_ptr<pending_base<void(socket_type&)>> teardown_;
  std::atomic<uint64_t>* sends_ = nullptr;
  std::function<void()> on_room_;
};

} // namespace kullsync::detail
