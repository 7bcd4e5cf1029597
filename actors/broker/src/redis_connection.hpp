#pragma once

// Private to the broker: one hiredis asynchronous connection driven by an
// Asio io_context. hiredis owns the socket; Asio only waits for it to be
// readable or writable (a posix::stream_descriptor that never closes it)
// and tells hiredis, which reads, parses and calls back. Every member is
// called on the io_context's thread only.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include "redis_value.hpp"

struct redisAsyncContext;

namespace kullsync::broker {

class redis_connection : public std::enable_shared_from_this<redis_connection> {
public:
  struct handlers {
    std::function<void()> up;
    std::function<void(const std::string& why)> down; // after a failed connect too
    /// A pub/sub message (a subscriber connection): channel and payload.
    std::function<void(std::string channel, std::string payload)> message;
    /// A subscription confirmed.
    std::function<void(std::string channel)> subscribed;
  };

  redis_connection(boost::asio::io_context& io, std::string host, uint16_t port,
                   handlers h);
  ~redis_connection();

  /// Connects (a failure or a timeout ends in `down`).
  void connect(std::chrono::milliseconds timeout);
  /// Sends a command; `done` gets the reply, or an error value when the
  /// connection is not up or goes down before the reply.
  void command(const std::vector<std::string>& argv, std::function<void(redis_value)> done);
  /// SUBSCRIBE / UNSUBSCRIBE (a subscriber connection).
  void subscribe(const std::vector<std::string>& channels, bool on);
  /// Drops the connection at once, pending commands failing (a stuck
  /// server answers nothing: waiting for it is no use); `down` follows.
  void drop(const std::string& why);
  /// The same without `down` (the broker stops).
  void shutdown();
  bool up() const { return up_; }
  /// When this connection last read something (steady clock, ms; 0:
  /// never). Read from any thread: the broker judges its links by it.
  int64_t last_read_ms() const { return last_read_ms_.load(std::memory_order_relaxed); }

private:
  static void add_read(void* p);
  static void del_read(void* p);
  static void add_write(void* p);
  static void del_write(void* p);
  static void cleanup(void* p);
  static void on_connect(const redisAsyncContext* ac, int status);
  static void on_disconnect(const redisAsyncContext* ac, int status);
  static void on_reply(redisAsyncContext* ac, void* reply, void* privdata);
  static void on_pubsub(redisAsyncContext* ac, void* reply, void* privdata);

  void wait_read();
  void wait_write();
  void report_down(std::string why);

  boost::asio::io_context& io_;
  std::string host_;
  uint16_t port_;
  handlers h_;
  redisAsyncContext* ac_ = nullptr;
  std::unique_ptr<boost::asio::posix::stream_descriptor> fd_;
  boost::asio::steady_timer connect_timer_;
  bool up_ = false;
  bool want_read_ = false, want_write_ = false;
  bool reading_ = false, writing_ = false;
  std::atomic<int64_t> last_read_ms_{0};
};

} // namespace kullsync::broker
