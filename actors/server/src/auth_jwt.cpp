// Signed tokens (RFC 7519) and the authenticator factory. libjwt checks
// signatures; which algorithm a token may use is decided here, from the key
// it would be checked with, before libjwt sees it: HS256 only with the shared
// secret, RS256/ES256 only with a public key of that type. So `alg: none` and
// algorithm confusion (an HS256 token "signed" with the public key's text)
// never reach a verifier.
#include <cctype>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <jwt.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "kullsync/messages/types.hpp"
#include "kullsync/server/auth.hpp"

namespace json = boost::json;

namespace kullsync::server {

namespace {

std::optional<std::string> base64url_decode(std::string_view in) {
  std::string out;
  out.reserve(in.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    int v;
    if (c >= 'A' && c <= 'Z') v = c - 'A';
    else if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
    else if (c >= '0' && c <= '9') v = c - '0' + 52;
    else if (c == '-') v = 62;
    else if (c == '_') v = 63;
    else return std::nullopt;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  return out;
}

/// Three base64url segments, the first two non-empty: what a JWT looks like
/// (an unsecured one, `alg: none`, has an empty signature; a legacy
/// `userId:deviceId` has a ':', which base64url has not).
bool looks_like_jwt(std::string_view t) {
  size_t dots = 0;
  size_t seg = 0;
  for (char c : t) {
    if (c == '.') {
      if (seg == 0)
        return false;
      ++dots;
      seg = 0;
    } else if (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_') {
      ++seg;
    } else {
      return false;
    }
  }
  return dots == 2;
}

struct jwt_deleter {
  void operator()(jwt_t* j) const { jwt_free(j); }
};

auth_result refuse(uint16_t code, std::string reason) {
  auth_result r;
  r.failure = {code, std::move(reason)};
  return r;
}

auth_result invalid(std::string why) {
  return refuse(close_code::invalid_token, "Invalid token: " + std::move(why));
}

/// A NumericDate claim in ms; nullopt when absent, error when not a number.
bool numeric_date(const json::object& claims, const char* name,
                  std::optional<int64_t>& out) {
  auto* v = claims.if_contains(name);
  if (v == nullptr)
    return true;
  if (v->is_int64())
    out = v->get_int64() * 1000;
  else if (v->is_uint64() && v->get_uint64() < (uint64_t{1} << 52))
    out = static_cast<int64_t>(v->get_uint64()) * 1000;
  else if (v->is_double() && v->get_double() > -1e13 && v->get_double() < 1e13)
    out = static_cast<int64_t>(v->get_double() * 1000);
  else
    return false;
  return true;
}

bool audience_matches(const json::value* aud, const std::string& want) {
  if (aud == nullptr)
    return false;
  if (aud->is_string())
    return aud->get_string() == want;
  if (aud->is_array())
    for (auto& a : aud->get_array())
      if (a.is_string() && a.get_string() == want)
        return true;
  return false;
}

class jwt_authenticator : public authenticator {
public:
  jwt_authenticator(const auth_options& opts, std::string pem_alg)
    : opts_(opts), pem_alg_(std::move(pem_alg)), names_(opts.seed) {}

  bool signed_tokens() const override { return true; }
  int64_t expiry_leeway_ms() const override { return opts_.leeway_ms; }

  auth_result authenticate(const auth_request& req) override {
    if (req.token.empty())
      return refuse(close_code::no_token, "No token provided");
    if (!looks_like_jwt(req.token))
      return invalid("malformed (not a JWT)");
    auto header = base64url_decode(req.token.substr(0, req.token.find('.')));
    boost::system::error_code ec;
    auto h = header ? json::parse(*header, ec) : json::value{};
    if (!header || ec || !h.is_object() || !h.get_object().contains("alg")
        || !h.get_object().at("alg").is_string())
      return invalid("malformed header");
    std::string alg{h.get_object().at("alg").get_string()};
    if (auto why = unaccepted_header(h.get_object()))
      return invalid(*why);
    const std::string* key = nullptr;
    jwt_alg_t want = JWT_ALG_INVAL;
    if (alg == "HS256" && !opts_.hs256_secret.empty()) {
      key = &opts_.hs256_secret;
      want = JWT_ALG_HS256;
    } else if (!pem_alg_.empty() && alg == pem_alg_) {
      key = &opts_.public_key_pem;
      want = alg == "RS256" ? JWT_ALG_RS256 : JWT_ALG_ES256;
    } else {
      // Named only when short and printable: a close reason must be UTF-8.
      bool say = alg.size() <= 16 && msg::valid_id(alg);
      return invalid("algorithm " + (say ? "'" + alg + "' " : std::string{})
                     + "is not accepted");
    }
    jwt_t* raw = nullptr;
    int rc = jwt_decode(&raw, req.token.c_str(),
                        reinterpret_cast<const unsigned char*>(key->data()),
                        static_cast<int>(key->size()));
    std::unique_ptr<jwt_t, jwt_deleter> j{raw};
    if (rc != 0 || !j)
      return invalid("bad signature");
    if (jwt_get_alg(j.get()) != want) // never, given the header check
      return invalid("algorithm mismatch");
    std::unique_ptr<char, decltype(&free)> grants{jwt_get_grants_json(j.get(), nullptr),
                                                  &free};
    auto c = grants ? json::parse(grants.get(), ec) : json::value{};
    if (!grants || ec || !c.is_object())
      return invalid("malformed claims");
    return check_claims(c.get_object(), req);
  }

private:
  /// What the header asks that this verifier does not do, said before the
  /// signature is checked (libjwt refuses another `typ` as if the signature
  /// were bad): a `typ` other than JWT (e.g. RFC 9068's "at+jwt"), or
  /// critical extensions, which RFC 7515 4.1.11 says must be refused when
  /// not understood (none is).
  static std::optional<std::string> unaccepted_header(const json::object& h) {
    if (auto* typ = h.if_contains("typ")) {
      std::string t = typ->is_string() ? std::string{typ->get_string()} : std::string{};
      for (auto& ch : t)
        ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
      if (t != "JWT") {
        bool say = typ->is_string() && t.size() <= 32 && msg::valid_id(t);
        return "token type " + (say ? "'" + std::string{typ->get_string()} + "' " : std::string{})
               + "is not accepted (typ must be JWT)";
      }
    }
    if (h.contains("crit"))
      return std::string{"critical header extensions (crit) are not understood"};
    return std::nullopt;
  }

  auth_result check_claims(const json::object& claims, const auth_request& req) {
    auto now = req.now_ms;
    auto* sub = claims.if_contains("sub");
    if (sub == nullptr || !sub->is_string() || sub->get_string().empty())
      return invalid("no subject (sub)");
    std::string user{sub->get_string()};
    if (!msg::valid_id(user))
      return invalid("sub is not a valid id");
    std::optional<int64_t> exp, nbf, iat;
    if (!numeric_date(claims, "exp", exp) || !numeric_date(claims, "nbf", nbf)
        || !numeric_date(claims, "iat", iat))
      return invalid("exp, nbf and iat must be numbers");
    if (!exp)
      return invalid("no expiry (exp)");
    if (now >= *exp + opts_.leeway_ms)
      return refuse(close_code::token_expired, "Token expired");
    if (nbf && now + opts_.leeway_ms < *nbf)
      return invalid("not valid yet (nbf)");
    if (iat && now + opts_.leeway_ms < *iat)
      return invalid("issued in the future (iat)");
    if (opts_.max_lifetime_ms > 0 && *exp - (iat ? *iat : now) > opts_.max_lifetime_ms)
      return invalid("lives longer than the server accepts (--max-token-lifetime)");
    if (!opts_.audience.empty()
        && !audience_matches(claims.if_contains("aud"), opts_.audience))
      return invalid("wrong audience");
    if (!opts_.issuer.empty()) {
      auto* iss = claims.if_contains("iss");
      if (iss == nullptr || !iss->is_string() || iss->get_string() != opts_.issuer)
        return invalid("wrong issuer");
    }
    identity who;
    if (auto* adm = claims.if_contains("admin"); adm != nullptr && adm->is_bool())
      who.admin = adm->get_bool();
    if (!who.admin && user == opts_.admin_user)
      return invalid("the admin feed needs a token with admin: true");
    // One stream per socket: an admin token joins the admin feed's, and
    // keeps whose token it is for its revocations and refreshes.
    if (who.admin && user != opts_.admin_user)
      who.admin_subject = rare_string{user};
    who.user_id = who.admin ? opts_.admin_user : std::move(user);
    if (auto* dev = claims.if_contains("device")) {
      if (!dev->is_string() || !msg::valid_id(dev->get_string()))
        return invalid("device is not a valid id");
      who.device_id = std::string{dev->get_string()};
    } else if (req.device && !req.device->empty()) {
      if (!msg::valid_id(*req.device))
        return invalid("device is not a valid id");
      who.device_id = *req.device;
    } else {
      who.device_id = names_.next(now);
    }
    who.expires_at_ms = exp;
    who.issued_at_ms = iat;
    auth_result r;
    r.who = std::move(who);
    return r;
  }

  auth_options opts_;
  std::string pem_alg_; // "RS256" or "ES256" for the public key, "" none
  device_namer names_;
};

/// jwt+legacy: JWTs verified; `userId:deviceId` still taken from v1
/// sockets (marked legacy), never for the admin feed.
class migration_authenticator : public authenticator {
public:
  migration_authenticator(std::shared_ptr<authenticator> jwt, const auth_options& opts)
    : jwt_(std::move(jwt)), legacy_(opts.seed ^ 0x5bd1e995), admin_user_(opts.admin_user) {}

  auth_result authenticate(const auth_request& req) override {
    if (req.token.empty() || looks_like_jwt(req.token))
      return jwt_->authenticate(req);
    if (req.v2)
      return invalid("kull.v2 needs a signed token");
    auto r = legacy_.authenticate(req);
    if (r.who && r.who->user_id == admin_user_)
      return invalid("the admin feed needs a signed token");
    if (r.who)
      r.who->legacy = true;
    return r;
  }

  bool signed_tokens() const override { return true; }
  int64_t expiry_leeway_ms() const override { return jwt_->expiry_leeway_ms(); }

private:
  std::shared_ptr<authenticator> jwt_;
  legacy_authenticator legacy_;
  std::string admin_user_;
};

/// The JWT algorithm of a PEM public key: RS256 for RSA, ES256 for EC P-256.
std::string pem_algorithm(const std::string& pem) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio{
    BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), &BIO_free};
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key{
    PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr), &EVP_PKEY_free};
  if (!key)
    throw std::invalid_argument("--jwt-public-key-file: not a PEM public key "
                                "(expected -----BEGIN PUBLIC KEY-----)");
  switch (EVP_PKEY_get_base_id(key.get())) {
    case EVP_PKEY_RSA:
      if (EVP_PKEY_get_bits(key.get()) < 2048)
        throw std::invalid_argument("--jwt-public-key-file: an RSA key needs at "
                                    "least 2048 bits");
      return "RS256";
    case EVP_PKEY_EC: {
      char group[64] = {0};
      size_t len = 0;
      if (EVP_PKEY_get_group_name(key.get(), group, sizeof(group), &len) != 1
          || std::strcmp(group, "prime256v1") != 0)
        throw std::invalid_argument("--jwt-public-key-file: an EC key must be on "
                                    "P-256 (ES256)");
      return "ES256";
    }
    default:
      throw std::invalid_argument("--jwt-public-key-file: only RSA (RS256) and "
                                  "EC P-256 (ES256) keys are supported");
  }
}

} // namespace

std::string read_key_file(const std::string& path, std::string_view flag) {
  auto bad = [&](const char* why) {
    return std::invalid_argument(std::string{flag} + ": '" + path + "' " + why);
  };
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    throw bad("is a directory, not a key file");
  std::ifstream in{path, std::ios::binary};
  if (!in)
    throw bad("cannot be read");
  std::ostringstream s;
  s << in.rdbuf();
  auto key = s.str();
  if (key.find_first_not_of(" \t\r\n") == std::string::npos)
    throw bad("is empty");
  return key;
}

std::shared_ptr<authenticator> make_authenticator(const auth_options& given) {
  if (given.mode == auth_mode::legacy)
    return std::make_shared<legacy_authenticator>(given.seed);
  auto opts = given;
  // A secret file usually ends with a newline that is not part of it.
  while (!opts.hs256_secret.empty()
         && (opts.hs256_secret.back() == '\n' || opts.hs256_secret.back() == '\r'))
    opts.hs256_secret.pop_back();
  if (opts.hs256_secret.empty() && opts.public_key_pem.empty())
    throw std::invalid_argument(
      "--auth jwt needs a key: give --jwt-secret-file PATH (HS256) and/or "
      "--jwt-public-key-file PATH (RS256/ES256), or choose --auth legacy");
  if (!opts.hs256_secret.empty() && opts.hs256_secret.size() < 32)
    throw std::invalid_argument("--jwt-secret-file: the HS256 secret must be at "
                                "least 32 bytes (RFC 7518 3.2)");
  std::string pem_alg;
  if (!opts.public_key_pem.empty())
    pem_alg = pem_algorithm(opts.public_key_pem);
  auto jwt = std::make_shared<jwt_authenticator>(opts, pem_alg);
  if (opts.mode == auth_mode::jwt)
    return jwt;
  return std::make_shared<migration_authenticator>(std::move(jwt), opts);
}

} // namespace kullsync::server
