#pragma once

// Private to kullsync_transports: the socket threads that client transports
// and the HTTP client share (kullsync::client_io).

#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include "kullsync/transports/beast_transport.hpp"

namespace kullsync {

/// An io_context and its threads, alive as long as any transport using it.
struct client_io::runtime {
  boost::asio::io_context ioc;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work{ioc.get_executor()};
  std::vector<std::thread> threads;

  explicit runtime(size_t n) : ioc(static_cast<int>(n)) {
    for (size_t i = 0; i < n; ++i)
      threads.emplace_back([this] { ioc.run(); });
  }

  ~runtime() {
    work.reset();
    ioc.stop();
    for (auto& t : threads) {
      if (!t.joinable())
        continue;
      // The last transport may die on one of these threads.
      if (t.get_id() == std::this_thread::get_id())
        t.detach();
      else
        t.join();
    }
  }
};


} // namespace kullsync
