#pragma once

// Keys made at test time and JWTs signed with them (libjwt, OpenSSL), so
// that the server's verifier is tested against tokens it did not make
// itself up (and, in tests/interop, against Python's PyJWT).

#include <cstdint>
#include <string>

namespace kullsync::test {

/// A key pair in PEM.
struct key_pair {
  std::string private_pem;
  std::string public_pem;
};

key_pair make_rsa_keys(int bits = 2048);
key_pair make_ec_keys(); // P-256

/// Signs the claims (a JSON object's text) with `alg` ("HS256", "RS256",
/// "ES256" or "none") and `key` (the secret or the private PEM).
std::string sign(const std::string& claims_json, const std::string& alg,
                 const std::string& key);

/// A token whose signature part was altered.
std::string tamper(std::string token);

} // namespace kullsync::test
