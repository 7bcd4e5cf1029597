// libFuzzer target: token verification as a socket's handshake runs it, in
// jwt+legacy mode with an HS256 secret and an ES256 public key (the input is
// the token; a leading 0x00 byte instead mutates a valid token with the rest
// of the input). Nothing may crash or leak; an accepted identity has valid
// ids, and a signed one an expiry.
#include <boost/json/src.hpp>

#include <cstdint>
#include <cstdlib>
#include <string>

#include "kullsync/messages/types.hpp"
#include "kullsync/server/auth.hpp"

using namespace kullsync;
using namespace kullsync::server;

namespace {

const char* public_key = R"(-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEk7dnLXF+oz1emnOhDdtC1++Y+2vt
SKhyr4LrHRgzilC92jtMyYO27aR14DpGtZGsANOM6HpEJOrvg3KOaM+dAQ==
-----END PUBLIC KEY-----
)";

const char* valid_tokens[] = {
  "eyJhbGciOiAiSFMyNTYiLCAidHlwIjogIkpXVCJ9.eyJzdWIiOiAidTEiLCAiZXhwIjogNDEwMjQ0NDgwMCwgImRldmljZSI6ICJkMSIsICJhdWQiOiAia3VsbCJ9.0z_xOWDyjesWbpQ5YAb8Bf44m4W7EPRpNnmio_XrAMs",
  "eyJhbGciOiAiSFMyNTYiLCAidHlwIjogIkpXVCJ9.eyJzdWIiOiAib3BzIiwgImV4cCI6IDQxMDI0NDQ4MDAsICJhZG1pbiI6IHRydWUsICJhdWQiOiAia3VsbCJ9.sqxRT5jcn5dcqZjBEiWq8YXCI26Z0llvtiNbWpjZX_k",
};

authenticator& auth() {
  static auto a = [] {
    auth_options o;
    o.mode = auth_mode::jwt_and_legacy;
    o.hs256_secret = "fuzz-secret-0123456789abcdef-0123456789";
    o.public_key_pem = public_key;
    o.audience = "kull";
    o.seed = 1;
    return make_authenticator(o);
  }();
  return *a;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string token;
  if (size >= 2 && data[0] == 0) {
    // Mutate a valid token: pairs of (position, xor) bytes.
    token = valid_tokens[data[1] % 2];
    for (size_t i = 2; i + 1 < size; i += 2)
      token[data[i] % token.size()] ^= static_cast<char>(data[i + 1]);
  } else {
    token.assign(reinterpret_cast<const char*>(data), size);
  }
  for (bool v2 : {false, true}) {
    auto r = auth().authenticate(auth_request{token, std::string{"dev"}, v2, 1750000000000});
    if (r.who) {
      if (!msg::valid_id(r.who->user_id) || !msg::valid_id(r.who->device_id))
        __builtin_trap();
      if (!r.who->legacy && !r.who->expires_at_ms)
        __builtin_trap();
      if (r.who->legacy && v2)
        __builtin_trap(); // unsigned tokens are v1's only
    } else if (r.failure.reason.size() > 123) {
      __builtin_trap(); // a close reason must fit a close frame
    }
  }
  return 0;
}
