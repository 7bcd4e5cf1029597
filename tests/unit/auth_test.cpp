// The server's token schemes: signed tokens (each refusal with its code),
// the algorithm bound to the key, jwt+legacy, and ids that must be valid.
#include <gtest/gtest.h>

#include "kullsync/messages/types.hpp"
#include "kullsync/server/auth.hpp"
#include "test_tokens.hpp"

using namespace kullsync;
using namespace kullsync::server;

namespace {

constexpr int64_t now = 1'750'000'000'000; // epoch ms
const std::string secret = "0123456789abcdef0123456789abcdef-secret";

std::string claims(const std::string& extra = "", int64_t exp_s = now / 1000 + 3600) {
  auto c = R"({"sub":"u1","exp":)" + std::to_string(exp_s);
  if (!extra.empty())
    c += "," + extra;
  return c + "}";
}

auth_result run(authenticator& a, const std::string& token, bool v2 = true,
                std::optional<std::string> device = std::nullopt) {
  return a.authenticate(auth_request{token, std::move(device), v2, now});
}

void expect_refused(const auth_result& r, uint16_t code, const std::string& why = "") {
  if (r.who) {
    ADD_FAILURE() << "accepted as " << r.who->user_id;
    return;
  }
  EXPECT_EQ(r.failure.close_code, code) << r.failure.reason;
  if (!why.empty()) {
    EXPECT_NE(r.failure.reason.find(why), std::string::npos) << r.failure.reason;
  }
}

class jwt_auth : public ::testing::Test {
protected:
  static void SetUpTestSuite() {
    rsa = new test::key_pair(test::make_rsa_keys());
    ec = new test::key_pair(test::make_ec_keys());
  }
  static void TearDownTestSuite() {
    delete rsa;
    delete ec;
  }
  std::shared_ptr<authenticator> make(auth_options o) {
    o.seed = 1;
    return make_authenticator(o);
  }
  std::shared_ptr<authenticator> hs() {
    auth_options o;
    o.hs256_secret = secret;
    return make(o);
  }
  static test::key_pair* rsa;
  static test::key_pair* ec;
};

test::key_pair* jwt_auth::rsa = nullptr;
test::key_pair* jwt_auth::ec = nullptr;

} // namespace

TEST_F(jwt_auth, hs256_token_names_user_device_and_expiry) {
  auto a = hs();
  auto r = run(*a, test::sign(claims(R"("device":"phone")"), "HS256", secret));
  ASSERT_TRUE(r.who) << r.failure.reason;
  EXPECT_EQ(r.who->user_id, "u1");
  EXPECT_EQ(r.who->device_id, "phone");
  EXPECT_EQ(r.who->expires_at_ms, (now / 1000 + 3600) * 1000);
  EXPECT_FALSE(r.who->admin);
  EXPECT_FALSE(r.who->legacy);
}

TEST_F(jwt_auth, device_from_claim_else_query_else_generated) {
  auto a = hs();
  auto plain = test::sign(claims(), "HS256", secret);
  EXPECT_EQ(run(*a, plain, true, std::string{"tablet"}).who->device_id, "tablet");
  EXPECT_EQ(run(*a, plain).who->device_id.rfind("web-" + std::to_string(now) + "-", 0), 0u);
  auto bound = test::sign(claims(R"("device":"phone")"), "HS256", secret);
  EXPECT_EQ(run(*a, bound, true, std::string{"tablet"}).who->device_id, "phone");
  expect_refused(run(*a, plain, true, std::string{"bad\xff"}), close_code::invalid_token,
                 "device");
}

TEST_F(jwt_auth, no_token_4001_and_malformed_4002) {
  auto a = hs();
  expect_refused(run(*a, ""), close_code::no_token);
  expect_refused(run(*a, "u1:d1"), close_code::invalid_token, "malformed");
  expect_refused(run(*a, "a.b"), close_code::invalid_token);
  expect_refused(run(*a, "eyJhbGciOiJIUzI1NiJ9.!!!.abc"), close_code::invalid_token);
  expect_refused(run(*a, "bm90IGpzb24.e30.c2ln"), close_code::invalid_token, "header");
}

TEST_F(jwt_auth, alg_none_is_refused) {
  auto a = hs();
  auto unsecured = test::sign(claims(), "none", "");
  expect_refused(run(*a, unsecured), close_code::invalid_token, "algorithm 'none'");
  // With a signature part made up, or the alg spelled otherwise.
  expect_refused(run(*a, unsecured + "c2ln"), close_code::invalid_token, "algorithm 'none'");
  auto none_upper = std::string{"eyJhbGciOiJOT05FIn0."} + unsecured.substr(unsecured.find('.') + 1);
  expect_refused(run(*a, none_upper), close_code::invalid_token, "algorithm 'NONE'");
}

TEST_F(jwt_auth, bad_signature_is_refused) {
  auto a = hs();
  expect_refused(run(*a, test::tamper(test::sign(claims(), "HS256", secret))),
                 close_code::invalid_token, "signature");
  expect_refused(run(*a, test::sign(claims(), "HS256", secret + "x")),
                 close_code::invalid_token, "signature");
}

TEST_F(jwt_auth, algorithm_is_bound_to_the_key) {
  // Only a public key configured: an HS256 token "signed" with the public
  // key's text (algorithm confusion) must not pass.
  auth_options o;
  o.public_key_pem = rsa->public_pem;
  auto a = make(o);
  ASSERT_TRUE(run(*a, test::sign(claims(), "RS256", rsa->private_pem)).who);
  expect_refused(run(*a, test::sign(claims(), "HS256", rsa->public_pem)),
                 close_code::invalid_token, "algorithm 'HS256'");
  expect_refused(run(*a, test::sign(claims(), "ES256", ec->private_pem)),
                 close_code::invalid_token, "algorithm 'ES256'");
  // Only a secret: RS256 is not accepted, whatever it is signed with.
  expect_refused(run(*hs(), test::sign(claims(), "RS256", rsa->private_pem)),
                 close_code::invalid_token, "algorithm 'RS256'");
  // Another RSA key's signature.
  auto other = test::make_rsa_keys();
  expect_refused(run(*a, test::sign(claims(), "RS256", other.private_pem)),
                 close_code::invalid_token, "signature");
}

TEST_F(jwt_auth, es256_and_both_keys) {
  auth_options o;
  o.public_key_pem = ec->public_pem;
  o.hs256_secret = secret;
  auto a = make(o);
  EXPECT_TRUE(run(*a, test::sign(claims(), "ES256", ec->private_pem)).who);
  EXPECT_TRUE(run(*a, test::sign(claims(), "HS256", secret)).who);
  expect_refused(run(*a, test::sign(claims(), "RS256", rsa->private_pem)),
                 close_code::invalid_token, "algorithm");
  expect_refused(run(*a, test::tamper(test::sign(claims(), "ES256", ec->private_pem))),
                 close_code::invalid_token, "signature");
}

TEST_F(jwt_auth, time_claims) {
  auto a = hs();
  expect_refused(run(*a, test::sign(claims("", now / 1000 - 1), "HS256", secret)),
                 close_code::token_expired);
  expect_refused(run(*a, test::sign(R"({"sub":"u1"})", "HS256", secret)),
                 close_code::invalid_token, "exp");
  expect_refused(run(*a, test::sign(R"({"sub":"u1","exp":"soon"})", "HS256", secret)),
                 close_code::invalid_token, "numbers");
  expect_refused(run(*a, test::sign(claims(R"("nbf":)" + std::to_string(now / 1000 + 60)),
                                    "HS256", secret)),
                 close_code::invalid_token, "nbf");
  expect_refused(run(*a, test::sign(claims(R"("iat":)" + std::to_string(now / 1000 + 60)),
                                    "HS256", secret)),
                 close_code::invalid_token, "iat");
  EXPECT_TRUE(run(*a, test::sign(claims(R"("nbf":)" + std::to_string(now / 1000 - 60)
                                        + R"(,"iat":)" + std::to_string(now / 1000 - 60)),
                                 "HS256", secret)).who);
  // Leeway: an expiry a second ago passes with two seconds of leeway.
  auth_options o;
  o.hs256_secret = secret;
  o.leeway_ms = 2000;
  EXPECT_TRUE(run(*make(o), test::sign(claims("", now / 1000 - 1), "HS256", secret)).who);
}

TEST_F(jwt_auth, subject_is_required_and_must_be_a_valid_id) {
  auto a = hs();
  auto exp = std::to_string(now / 1000 + 60);
  expect_refused(run(*a, test::sign(R"({"exp":)" + exp + "}", "HS256", secret)),
                 close_code::invalid_token, "sub");
  expect_refused(run(*a, test::sign(R"({"sub":"","exp":)" + exp + "}", "HS256", secret)),
                 close_code::invalid_token, "sub");
  expect_refused(run(*a, test::sign(R"({"sub":")" + std::string(200, 'x') + R"(","exp":)"
                                      + exp + "}", "HS256", secret)),
                 close_code::invalid_token, "sub");
}

TEST_F(jwt_auth, audience_and_issuer_when_configured) {
  auth_options o;
  o.hs256_secret = secret;
  o.audience = "kull-sync";
  o.issuer = "https://kullai.com";
  auto a = make(o);
  auto both = R"("aud":"kull-sync","iss":"https://kullai.com")";
  EXPECT_TRUE(run(*a, test::sign(claims(both), "HS256", secret)).who);
  EXPECT_TRUE(run(*a, test::sign(claims(R"("aud":["x","kull-sync"],"iss":"https://kullai.com")"),
                                 "HS256", secret)).who);
  expect_refused(run(*a, test::sign(claims(R"("aud":"other","iss":"https://kullai.com")"),
                                    "HS256", secret)),
                 close_code::invalid_token, "audience");
  expect_refused(run(*a, test::sign(claims(R"("iss":"https://kullai.com")"), "HS256", secret)),
                 close_code::invalid_token, "audience");
  expect_refused(run(*a, test::sign(claims(R"("aud":"kull-sync","iss":"evil")"), "HS256",
                                    secret)),
                 close_code::invalid_token, "issuer");
  // Not configured: not checked.
  EXPECT_TRUE(run(*hs(), test::sign(claims(R"("aud":"other","iss":"evil")"), "HS256", secret)).who);
}

TEST_F(jwt_auth, admin_feed_only_for_admin_tokens) {
  auto a = hs();
  auto r = run(*a, test::sign(claims(R"("admin":true)"), "HS256", secret));
  ASSERT_TRUE(r.who);
  EXPECT_TRUE(r.who->admin);
  EXPECT_EQ(r.who->user_id, "admin"); // the admin feed's stream
  expect_refused(run(*a, test::sign(R"({"sub":"admin","exp":)" + std::to_string(now / 1000 + 60)
                                      + "}", "HS256", secret)),
                 close_code::invalid_token, "admin");
}

TEST_F(jwt_auth, jwt_and_legacy_takes_unsigned_tokens_from_v1_only) {
  auth_options o;
  o.mode = auth_mode::jwt_and_legacy;
  o.hs256_secret = secret;
  auto a = make(o);
  auto r = run(*a, "u1:d1", false);
  ASSERT_TRUE(r.who);
  EXPECT_TRUE(r.who->legacy);
  EXPECT_EQ(r.who->device_id, "d1");
  expect_refused(run(*a, "u1:d1", true), close_code::invalid_token, "signed");
  expect_refused(run(*a, "admin:d1", false), close_code::invalid_token, "admin");
  auto j = run(*a, test::sign(claims(), "HS256", secret), true);
  ASSERT_TRUE(j.who);
  EXPECT_FALSE(j.who->legacy);
  expect_refused(run(*a, test::tamper(test::sign(claims(), "HS256", secret)), false),
                 close_code::invalid_token, "signature");
}

TEST_F(jwt_auth, the_server_refuses_to_start_without_a_usable_key) {
  auto fails = [](auth_options o, const std::string& says) {
    try {
      make_authenticator(o);
      ADD_FAILURE() << "started without: " << says;
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string{e.what()}.find(says), std::string::npos) << e.what();
    }
  };
  fails(auth_options{}, "--jwt-secret-file");
  auth_options short_secret;
  short_secret.hs256_secret = "short";
  fails(short_secret, "32 bytes");
  auth_options bad_pem;
  bad_pem.public_key_pem = "-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n";
  fails(bad_pem, "--jwt-public-key-file");
  auth_options legacy;
  legacy.mode = auth_mode::legacy;
  EXPECT_NO_THROW(make_authenticator(legacy));
}

TEST(legacy_auth, deployed_rules_and_valid_ids) {
  legacy_authenticator a{3};
  auto r = a.authenticate({"u1:d1", std::nullopt, false, now});
  ASSERT_TRUE(r.who);
  EXPECT_EQ(r.who->user_id, "u1");
  EXPECT_EQ(r.who->device_id, "d1");
  EXPECT_EQ(a.authenticate({"u1", std::nullopt, false, now}).who->device_id.rfind("web-", 0), 0u);
  expect_refused(a.authenticate({"", std::nullopt, false, now}), close_code::no_token);
  expect_refused(a.authenticate({":d1", std::nullopt, false, now}), close_code::invalid_token);
  // The attack: invalid UTF-8 in a device id would reach other devices'
  // DEVICE_CONNECTED frames and make strict clients drop their sockets.
  expect_refused(a.authenticate({"victim:evil\xff\xfe", std::nullopt, false, now}),
                 close_code::invalid_token, "UTF-8");
  expect_refused(a.authenticate({"victim\xc0\xaf:d", std::nullopt, false, now}),
                 close_code::invalid_token);
  expect_refused(a.authenticate({std::string(129, 'u') + ":d", std::nullopt, false, now}),
                 close_code::invalid_token);
  expect_refused(a.authenticate({"u1:line\nbreak", std::nullopt, false, now}),
                 close_code::invalid_token);
  EXPECT_TRUE(a.authenticate({"ünïcødé:📱", std::nullopt, false, now}).who);
}

// A v2 socket's colon-less token takes the query's device, so that a
// client's resends after a reconnect stay one device's (its ids are scoped
// by device); a v1 socket keeps the deployed server's generated id, and a
// token's own device wins.
TEST(legacy_auth, a_v2_socket_names_its_device_in_the_query) {
  legacy_authenticator a{3};
  EXPECT_EQ(a.authenticate({"u1", std::string{"dq"}, true, now}).who->device_id, "dq");
  EXPECT_EQ(a.authenticate({"u1:", std::string{"dq"}, true, now}).who->device_id, "dq");
  EXPECT_EQ(a.authenticate({"u1:d1", std::string{"dq"}, true, now}).who->device_id, "d1");
  EXPECT_EQ(a.authenticate({"u1", std::string{"dq"}, false, now}).who->device_id.rfind("web-", 0),
            0u);
  EXPECT_EQ(a.authenticate({"u1", std::string{}, true, now}).who->device_id.rfind("web-", 0), 0u);
  expect_refused(a.authenticate({"u1", std::string{"bad"}, true, now}),
                 close_code::invalid_token, "device");
}

TEST(valid_id, utf8_length_and_control_characters) {
  EXPECT_TRUE(msg::valid_id("u1"));
  EXPECT_TRUE(msg::valid_id("日本語"));
  EXPECT_TRUE(msg::valid_id(std::string(128, 'a')));
  EXPECT_FALSE(msg::valid_id(std::string(129, 'a')));
  EXPECT_FALSE(msg::valid_id(""));
  EXPECT_FALSE(msg::valid_id("a\x01"));
  EXPECT_FALSE(msg::valid_id("a\x7f"));
  EXPECT_FALSE(msg::valid_id("\xff"));
  EXPECT_FALSE(msg::valid_id("\xe2\x82"));         // truncated
  EXPECT_FALSE(msg::valid_id("\xed\xa0\x80"));     // a surrogate
  EXPECT_FALSE(msg::valid_id("\xf4\x90\x80\x80")); // past U+10FFFF
  EXPECT_FALSE(msg::valid_id("\xe0\x80\xaf"));     // overlong
  EXPECT_FALSE(msg::valid_id("\xc2\x85"));         // C1 control
}
