#include <map>
#include <random>
#include <string>

#include "kullsync/messages/codec.hpp"
#include "sim_server.hpp"

namespace kullsync::test {

msg::shoot_progress random_shoot(std::mt19937_64& rng, int shoots) {
  msg::shoot_progress p;
  p.shoot_id = "s" + std::to_string(rng() % static_cast<uint64_t>(shoots));
  p.total_count = 100;
  p.processed_count = static_cast<int64_t>(rng() % 101);
  auto r = rng() % 10;
  p.status = r < 7 ? msg::shoot_status::processing
                   : r < 9 ? msg::shoot_status::completed : msg::shoot_status::failed;
  p.provider = "sim";
  return p;
}

std::string describe(const std::map<std::string, msg::shoot_progress>& shoots) {
  std::string out;
  for (auto& [id, p] : shoots)
    out += id + ":" + std::string{msg::to_string(p.status)} + "/"
           + std::to_string(p.processed_count) + " ";
  return out;
}

} // namespace kullsync::test
