#pragma once

// Private to the server side of kullsync_transports.

#include <cstddef>
#include <utility>
#include <vector>

#include "kullsync/transports/transport.hpp"

namespace kullsync::detail {

/// A socket's frames waiting for room in its output buffer: a vector
/// consumed from the front, so that an idle socket holds no allocation
/// (std::deque keeps a 512-byte block).
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

} // namespace kullsync::detail
