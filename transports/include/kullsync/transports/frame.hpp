#pragma once

/// One serialised frame shared by every socket it goes to: a broadcast is
/// encoded once and never copied on its way to the sockets. No CAF (its
/// inspection for CAF messages is in transport.hpp).

#include <memory>
#include <string>

namespace kullsync {

struct shared_frame {
  std::shared_ptr<const std::string> text;
  const std::string& str() const { return *text; }
  explicit operator bool() const { return text != nullptr; }
};

inline shared_frame make_shared_frame(std::string text) {
  return shared_frame{std::make_shared<const std::string>(std::move(text))};
}

} // namespace kullsync
