#pragma once

// Private to the Beast translation units of kullsync_transports.
//
// A server's TCP socket whose writes are gathered: each frame is appended to
// an output buffer, and the buffer goes to the kernel with one send when no
// send is in flight and nobody holds the cork. While the owner drains a queue
// of frames it holds the cork, so every frame of that queue leaves in one
// syscall; an idle socket's single frame leaves at once, written in place.
// What the kernel does not take at once is sent in the background, and the
// frames that come meanwhile pile up behind it and go out together.
// Data, control and close frames all pass through here in order, and the
// sending side is shut down only after everything before it was sent. The
// buffer is bounded: past `max_buffered` bytes the owner keeps data frames in
// its queue (has_room, on_room), so a slow reader backs up into its owner's
// queue, which cuts it.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/error.hpp>

#include "kullsync/transports/close_code.hpp"
#include "kullsync/transports/ws_frame.hpp"
#include "io_socket.hpp"

namespace kullsync::detail {

class coalescing_socket {
public:
  using socket_type = io_socket;
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
  socket_type& socket() noexcept { return socket_; }

  /// Holds sends back until uncork(), or until `flush_bytes` are gathered.
  void cork() { corked_ = true; }
  bool corked() const { return corked_; }
  void uncork() {
    corked_ = false;
    maybe_send();
  }

  /// Counts each send (of the whole buffer, at once or in the background) in `*c`.
  void count_sends_in(std::atomic<uint64_t>* c) { sends_ = c; }

  /// Appends one complete, unmasked frame (RFC 6455 5.2, as a server sends
  /// it): text (0x1), ping (0x9) or pong (0xA). Returns false, sending
  /// nothing, once a close frame was written or the socket failed (no frame
  /// may follow a close frame), or for a ping or pong without room. Data
  /// frames keep to `has_room()`; the owner's queue holds what does not fit.
  bool append_frame(uint8_t opcode, std::string_view payload) {
    if (close_written_ || error_)
      return false;
    // A ping or pong that finds the buffer full is dropped: the peer is not
    // reading, and RFC 6455 5.5.3 lets an endpoint answer only the latest
    // ping. So pings from a peer that never reads cannot grow the buffer.
    bool ping_or_pong = opcode == ws::opcode::ping || opcode == ws::opcode::pong;
    if (ping_or_pong && !has_room())
      return false;
    unsigned char head[ws::max_frame_header];
    auto len = ws::write_frame_header(head, opcode, payload.size(), false);
    pending_.append(reinterpret_cast<const char*>(head), len);
    pending_.append(payload);
    ++appended_;
    maybe_send();
    return true;
  }
  bool append_text_frame(std::string_view payload) {
    return append_frame(ws::opcode::text, payload);
  }

  /// Appends the close frame (code, and a reason cut to fit 125 bytes);
  /// nothing may follow it. no_status (1005) is never sent: its frame
  /// carries no code, as the peer's close frame it answers.
  void append_close(uint16_t code, std::string_view reason) {
    std::string payload;
    if (code != close_code::no_status) {
      payload.push_back(static_cast<char>(code >> 8));
      payload.push_back(static_cast<char>(code & 0xFF));
      payload.append(reason.substr(0, 123));
    }
    append_frame(ws::opcode::close, payload);
    close_written_ = true;
  }
  bool close_written() const { return close_written_; }

  /// Shuts the sending side down (TCP FIN) once everything appended so far
  /// was sent: the end of a close handshake.
  void shutdown_when_sent() { end_when_sent(end::shutdown); }

  /// Closes the socket once everything appended so far was sent (or at
  /// once if the socket failed): the peer is gone.
  void close_when_sent() { end_when_sent(end::close); }

  /// False while `max_buffered` bytes wait. That happens only behind a
  /// background send (a send the kernel took whole leaves nothing, and a
  /// corked buffer is sent at `flush_bytes`), so an owner that finds no room
  /// always hears `on_room` later, and hears it again after each send the
  /// kernel takes whole, for as long as it adds frames.
  bool has_room() const { return pending_.size() < max_buffered; }

  /// Gives both buffers back if nothing waits or is being sent: most
  /// sockets are idle most of the time, and kept buffers (the WELCOME and
  /// SNAPSHOT's ~400 bytes) were a tenth of an idle socket's memory. Called
  /// by the keepalive sweep, so a busy socket allocates once a sweep, not
  /// once a send.
  void release_buffers() {
    if (sending_ || !pending_.empty())
      return;
    std::string{}.swap(inflight_);
    std::string{}.swap(pending_);
  }

  /// Called after each background send completes, before the next one
  /// starts: the owner moves frames that waited for room.
  void on_room(std::function<void()> f) { on_room_ = std::move(f); }

private:
  enum class end : uint8_t { none, shutdown, close };

  void end_when_sent(end how) {
    if (how > end_)
      end_ = how;
    corked_ = false;
    if (error_)
      pending_.clear();
    maybe_send();
  }

  void maybe_send() {
    if (sending_)
      return;
    if (!pending_.empty()) {
      if (corked_ && pending_.size() < flush_bytes)
        return;
      if (sends_ != nullptr)
        sends_->fetch_add(1, std::memory_order_relaxed);
      size_t sent = send_now();
      if (sent < pending_.size())
        return send_later(sent);
      pending_.clear();
      keep_small(pending_);
    }
    error_code ignored;
    if (end_ == end::shutdown)
      socket_.shutdown(socket_type::shutdown_send, ignored);
    else if (end_ == end::close)
      socket_.close(ignored);
    end_ = end::none;
  }

  // What the kernel takes at once. Most sends fit its buffer whole (a ping,
  // a drain's frames): written here, they need no operation to allocate, no
  // completion to run and no reference to the owner. On an error nothing was
  // written, and the async send meets the socket's error again and records
  // it (appends fail from then on).
  size_t send_now() {
    if (!socket_.non_blocking())
      return 0; // a blocking socket would wait here
    error_code ec;
    size_t n = socket_.write_some(boost::asio::buffer(pending_), ec);
    return ec ? 0 : n;
  }

  // The rest waits for the socket to take it: a peer reading slowly.
  void send_later(size_t sent) {
    sending_ = true;
    std::swap(pending_, inflight_);
    boost::asio::async_write(socket_, boost::asio::buffer(inflight_) + sent,
                             [this, keep = owner_.lock()](error_code ec, size_t) {
                               on_sent(ec);
                             });
  }

  // Kept for the next send (no allocation per send) up to flush_bytes; an
  // idle socket gives its buffers back at the sweep (release_buffers).
  static void keep_small(std::string& buffer) {
    if (buffer.capacity() > flush_bytes)
      std::string{}.swap(buffer);
  }

  void on_sent(error_code ec) {
    sending_ = false;
    inflight_.clear();
    keep_small(inflight_);
    if (ec && !error_)
      error_ = ec;
    if (error_) {
      pending_.clear();
      if (end_ == end::close)
        maybe_send();
      return;
    }
    give_room();
  }

  // The owner moves what waited for room; what it adds leaves in one send.
  // The buffer may still be full here (filled while the send was in flight),
  // and a send the kernel takes whole makes room with no completion to come:
  // so the owner is asked again until a send is in flight (its completion
  // asks next), or it had room and added nothing (nothing waits).
  void give_room() {
    for (;;) {
      bool room = has_room();
      uint64_t before = appended_;
      if (on_room_ && !close_written_) {
        corked_ = true;
        on_room_();
        corked_ = false;
      }
      maybe_send();
      if (sending_ || error_ || (room && appended_ == before))
        return;
    }
  }

  socket_type socket_;
  std::weak_ptr<void> owner_;
  std::string pending_;  // gathered, not yet sent
  std::string inflight_; // handed to the kernel by the send in flight
  bool corked_ = false;
  bool sending_ = false;
  bool close_written_ = false;
  uint64_t appended_ = 0; // frames appended: did the owner add any on room?
  end end_ = end::none; // what to do once all is sent
  error_code error_;
  std::atomic<uint64_t>* sends_ = nullptr;
  std::function<void()> on_room_;
};

} // namespace kullsync::detail
