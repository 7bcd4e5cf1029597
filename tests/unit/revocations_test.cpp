// The revocation list: whole-second issue times, the stronger revocation
// kept, lapses, the observer, and the file a node alone keeps it in.
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include <unistd.h>

#include <gtest/gtest.h>

#include "kullsync/server/revocations.hpp"

using kullsync::server::revocation;
using kullsync::server::revocation_list;

namespace {

constexpr int64_t t0 = 1'700'000'000'000; // a whole second, in ms

std::string scratch(const char* name) {
  auto path = testing::TempDir() + name + std::to_string(::getpid());
  std::remove(path.c_str());
  return path;
}

} // namespace

TEST(revocations, tokens_issued_in_an_earlier_second_are_revoked) {
  revocation_list l;
  l.add({"u", t0 + 400, t0 + 60'000}); // revoked at 400 ms into a second
  EXPECT_TRUE(l.revoked("u", t0 - 1000, t0 + 500));
  // iat has whole seconds: a token of the same second is the fresh login.
  EXPECT_FALSE(l.revoked("u", t0, t0 + 500));
  EXPECT_FALSE(l.revoked("u", t0 + 1000, t0 + 500));
  EXPECT_TRUE(l.revoked("u", std::nullopt, t0 + 500)) << "no iat: revoked";
  EXPECT_FALSE(l.revoked("v", t0 - 1000, t0 + 500)) << "another user";
  EXPECT_FALSE(l.revoked("u", std::nullopt, t0 + 60'000)) << "lapsed";
}

TEST(revocations, the_stronger_revocation_stays) {
  revocation_list l;
  std::vector<std::string> told;
  l.observe([&](const std::string& u) { told.push_back(u); });
  EXPECT_TRUE(l.add({"u", t0, t0 + 60'000}));
  EXPECT_FALSE(l.add({"u", t0 - 5000, t0 + 1000})) << "weaker: no change";
  EXPECT_TRUE(l.revoked("u", t0 - 1000, t0 + 2000));
  EXPECT_TRUE(l.add({"u", t0 + 5000, t0 + 1000})) << "a later before";
  EXPECT_TRUE(l.revoked("u", t0 + 3000, t0 + 4000));
  EXPECT_TRUE(l.revoked("u", t0 + 3000, t0 + 59'000)) << "the later until kept";
  EXPECT_EQ(told, (std::vector<std::string>{"u", "u"}));
  EXPECT_EQ(l.in_force(t0 + 60'000).size(), 0u);
}

TEST(revocations, a_file_keeps_them_across_restarts) {
  auto path = scratch("revocations");
  {
    revocation_list l;
    ASSERT_FALSE(l.keep_in(path, t0)) << "a file that does not exist yet is made";
    l.add({"user one", t0, t0 + 60'000});
    l.add({"lapses", t0, t0 + 10});
  }
  revocation_list again;
  ASSERT_FALSE(again.keep_in(path, t0 + 100));
  EXPECT_TRUE(again.revoked("user one", t0 - 1000, t0 + 100));
  auto kept = again.in_force(t0 + 100);
  ASSERT_EQ(kept.size(), 1u) << "what lapsed is not loaded";
  EXPECT_EQ(kept[0].user, "user one");
  std::remove(path.c_str());
}

TEST(revocations, a_malformed_file_is_refused_with_its_line) {
  auto path = scratch("revocations-bad");
  std::ofstream{path} << "1 2 u\nnot a line\n";
  revocation_list l;
  auto why = l.keep_in(path, t0);
  ASSERT_TRUE(why);
  EXPECT_NE(why->find(":2:"), std::string::npos) << *why;
  std::remove(path.c_str());
}

TEST(revocations, one_text_form_between_nodes_and_in_the_file) {
  revocation r{"user with spaces", t0, t0 + 60'000};
  auto text = kullsync::server::to_text(r);
  EXPECT_EQ(text, "1700000000000 1700000060000 user with spaces");
  auto back = kullsync::server::revocation_from_text(text);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->user, r.user);
  EXPECT_EQ(back->before_ms, r.before_ms);
  EXPECT_EQ(back->until_ms, r.until_ms);
  for (auto* bad : {"", "1 2", "1 2 ", "x 2 u", "1 y u", "1  u"})
    EXPECT_FALSE(kullsync::server::revocation_from_text(bad)) << '"' << bad << '"';
}
