// The wire types as CAF message types: registration, inspection, transport
// through a serializer.
#include <gtest/gtest.h>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/binary_deserializer.hpp>
#include <caf/binary_serializer.hpp>
#include <caf/deep_to_string.hpp>

#include "kullsync/messages/caf_types.hpp"

using namespace kullsync::msg;

TEST(caf_types, registered_types_are_known_to_the_system) {
  caf::actor_system_config cfg;
  add_message_types(cfg);
  caf::actor_system sys{cfg};
  EXPECT_NE(sys.types().make_value("kullsync::server_message"), nullptr);
  EXPECT_NE(sys.types().make_value("kullsync::shoot_progress"), nullptr);
  EXPECT_EQ(sys.types().make_value("kullsync::no_such_type"), nullptr);
}

TEST(caf_types, serializer_round_trip_and_to_string) {
  caf::actor_system_config cfg;
  add_message_types(cfg);
  caf::actor_system sys{cfg};
  shoot_progress p;
  p.shoot_id = "s1";
  p.status = shoot_status::completed;
  p.processed_count = 3;
  p.total_count = 3;
  p.provider = "x";
  auto m = make_server_message(server_type::shoot_progress, p, 42, "server");
  std::vector<char> buf;
  caf::binary_serializer sink{sys, buf};
  ASSERT_FALSE(sink(m));
  server_message back;
  caf::binary_deserializer source{sys, buf};
  ASSERT_FALSE(source(back));
  EXPECT_TRUE(back == m);
  auto str = caf::deep_to_string(m);
  EXPECT_NE(str.find("server_message"), std::string::npos) << str;
  EXPECT_NE(str.find("SHOOT_PROGRESS"), std::string::npos) << str;
}
