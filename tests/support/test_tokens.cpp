#include "test_tokens.hpp"

#include <memory>
#include <stdexcept>

#include <jwt.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

namespace kullsync::test {

namespace {

std::string bio_text(BIO* b) {
  char* data = nullptr;
  auto n = BIO_get_mem_data(b, &data);
  return std::string{data, static_cast<size_t>(n)};
}

key_pair to_pems(EVP_PKEY* key) {
  std::unique_ptr<BIO, decltype(&BIO_free)> priv{BIO_new(BIO_s_mem()), &BIO_free};
  std::unique_ptr<BIO, decltype(&BIO_free)> pub{BIO_new(BIO_s_mem()), &BIO_free};
  PEM_write_bio_PrivateKey(priv.get(), key, nullptr, nullptr, 0, nullptr, nullptr);
  PEM_write_bio_PUBKEY(pub.get(), key);
  EVP_PKEY_free(key);
  return {bio_text(priv.get()), bio_text(pub.get())};
}

} // namespace

key_pair make_rsa_keys(int bits) {
  auto* key = EVP_RSA_gen(static_cast<unsigned>(bits));
  if (key == nullptr)
    throw std::runtime_error("RSA key generation failed");
  return to_pems(key);
}

key_pair make_ec_keys() {
  auto* key = EVP_EC_gen("P-256");
  if (key == nullptr)
    throw std::runtime_error("EC key generation failed");
  return to_pems(key);
}

std::string sign(const std::string& claims_json, const std::string& alg,
                 const std::string& key) {
  jwt_t* raw = nullptr;
  jwt_new(&raw);
  std::unique_ptr<jwt_t, decltype(&jwt_free)> j{raw, &jwt_free};
  if (jwt_add_grants_json(j.get(), claims_json.c_str()) != 0)
    throw std::runtime_error("bad claims: " + claims_json);
  auto a = jwt_str_alg(alg.c_str());
  int rc = a == JWT_ALG_NONE
             ? jwt_set_alg(j.get(), a, nullptr, 0)
             : jwt_set_alg(j.get(), a, reinterpret_cast<const unsigned char*>(key.data()),
                           static_cast<int>(key.size()));
  if (rc != 0)
    throw std::runtime_error("jwt_set_alg failed for " + alg);
  std::unique_ptr<char, decltype(&free)> out{jwt_encode_str(j.get()), &free};
  if (!out)
    throw std::runtime_error("signing failed for " + alg);
  return out.get();
}

std::string tamper(std::string token) {
  auto& c = token[token.size() - 3];
  c = c == 'A' ? 'B' : 'A';
  return token;
}

} // namespace kullsync::test
