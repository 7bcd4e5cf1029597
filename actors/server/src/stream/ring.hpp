#pragma once

// Private to the server: a queue that costs nothing while empty (a
// std::deque allocates a block the moment it exists, and a stream is opened
// for every connected user, most of whom have nothing stored). Elements are
// appended at the back, dropped at the front and reached by index. No CAF.

#include <cstddef>
#include <utility>
#include <vector>

namespace kullsync::server {

template <class T>
class ring {
public:
  bool empty() const { return head_ == items_.size(); }
  size_t size() const { return items_.size() - head_; }
  T& front() { return items_[head_]; }
  const T& front() const { return items_[head_]; }
  T& operator[](size_t i) { return items_[head_ + i]; }
  const T& operator[](size_t i) const { return items_[head_ + i]; }

  void push_back(T x) { items_.push_back(std::move(x)); }

  void pop_front() {
    items_[head_] = T{}; // releases what it holds now
    if (++head_ == items_.size()) {
      items_.clear();
      head_ = 0;
    } else if (head_ >= 32 && head_ * 2 >= items_.size()) {
      // Half of it is dropped space: move the rest down (amortised O(1)).
      items_.erase(items_.begin(), items_.begin() + static_cast<std::ptrdiff_t>(head_));
      head_ = 0;
    }
  }

  template <class F>
  void for_each(F f) {
    for (auto i = head_; i < items_.size(); ++i)
      f(items_[i]);
  }

private:
  std::vector<T> items_;
  size_t head_ = 0;
};

} // namespace kullsync::server
