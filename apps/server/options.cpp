#include "options.hpp"

#include "../shared/api_keys.hpp"
#include "../shared/cli_checks.hpp"

#include <cctype>
#include <fstream>
#include <iostream>
#include <stdexcept>

namespace kullsync::app {

namespace {

/// Splits HOST:PORT or [V6]:PORT; false if malformed.
bool parse_listen(const std::string& s, std::string& host, uint16_t& port) {
  auto colon = s.rfind(':');
  if (colon == std::string::npos || colon + 1 == s.size())
    return false;
  host = s.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  if (host.empty())
    return false;
  auto p = s.substr(colon + 1);
  if (p.size() > 5 || p.find_first_not_of("0123456789") != std::string::npos)
    return false;
  auto n = std::stoul(p);
  if (n > 65535)
    return false;
  port = static_cast<uint16_t>(n);
  return true;
}

template <class T>
CLI::Option* flag(CLI::App& app, const char* name, T& value, const char* env,
                  const std::string& help) {
  return app.add_option(name, value, help)->envname(env)->capture_default_str();
}

} // namespace

void add_flags(CLI::App& app, server_options& o) {
  app.add_option("--config", o.config,
                 "TOML file of flags under their names (listen = \"0.0.0.0:5000\"); the "
                 "command line and the environment win over it")
    ->envname("KULLSYNC_CONFIG");
  flag(app, "--listen", o.listen, "KULLSYNC_LISTEN", "HOST:PORT to serve on (port 0: any free port)");
  flag(app, "--auth", o.auth, "KULLSYNC_AUTH",
       "token scheme: jwt (signed tokens), legacy (userId:deviceId, unverified, as "
       "deployed) or jwt+legacy (JWTs verified; userId:deviceId still taken from v1 "
       "sockets, for a migration)")
    ->check(CLI::IsMember({"jwt", "legacy", "jwt+legacy"}));
  flag(app, "--jwt-secret-file", o.jwt_secret_file, "KULLSYNC_JWT_SECRET_FILE",
       "file holding the HS256 shared secret (at least 32 bytes)");
  flag(app, "--jwt-public-key-file", o.jwt_public_key_file, "KULLSYNC_JWT_PUBLIC_KEY_FILE",
       "PEM public key: RSA (RS256) or EC P-256 (ES256)");
  flag(app, "--jwt-audience", o.jwt_audience, "KULLSYNC_JWT_AUDIENCE",
       "when set, a token's aud must name it");
  flag(app, "--jwt-issuer", o.jwt_issuer, "KULLSYNC_JWT_ISSUER",
       "when set, a token's iss must equal it");
  flag(app, "--jwt-leeway", o.jwt_leeway, "KULLSYNC_JWT_LEEWAY",
       "seconds of clock skew allowed on exp, nbf and iat")->check(CLI::Range(0u, 300u));
  flag(app, "--max-token-lifetime", o.max_token_lifetime, "KULLSYNC_MAX_TOKEN_LIFETIME",
       "seconds a signed token may live at most (exp - iat): longer ones are refused "
       "(4002); a revocation (POST /api/sync/users/ID/revoke) is kept this long")
    ->check(CLI::Range(60u, 31'536'000u));
  flag(app, "--revocations-file", o.revocations_file, "KULLSYNC_REVOCATIONS_FILE",
       "a node alone keeps the tokens operators revoked in this file, across restarts "
       "(a cluster keeps them in Redis); without it they are kept in memory only");
  flag(app, "--api-keys-file", o.api_keys_file, "KULLSYNC_API_KEYS_FILE",
       "HTTP API keys, one per line: every /api/sync/* request but GET status then "
       "needs Authorization: Bearer <key> (else 401)");
  flag(app, "--tls-cert", o.tls_cert, "KULLSYNC_TLS_CERT",
       "PEM certificate chain: with --tls-key the port serves wss:// and https:// only");
  flag(app, "--tls-key", o.tls_key, "KULLSYNC_TLS_KEY", "PEM private key of --tls-cert");
  flag(app, "--trusted-proxies", o.trusted_proxies, "KULLSYNC_TRUSTED_PROXIES",
       "CIDR[,CIDR...]: balancers that may name the client (X-Forwarded-For's last entry, "
       "X-Real-IP, or a PROXY header): per-address limits and logs then see the client, "
       "not the balancer. Anybody else's such headers are ignored")
    ->delimiter(',');
  flag(app, "--proxy-protocol", o.proxy_protocol, "KULLSYNC_PROXY_PROTOCOL",
       "on: connections from --trusted-proxies begin with a PROXY protocol header (v1 "
       "or v2, e.g. HAProxy's send-proxy-v2), which names the client; one without it, "
       "or one with it from anybody else, is closed")
    ->check(CLI::IsMember({"on", "off"}));
  flag(app, "--ping-interval", o.ping_interval, "KULLSYNC_PING_INTERVAL",
       "seconds between protocol pings; a socket that did not answer the previous one is dropped")
    ->check(CLI::Range(1u, 3600u));
  flag(app, "--handshake-timeout", o.handshake_timeout, "KULLSYNC_HANDSHAKE_TIMEOUT",
       "seconds allowed for an HTTP request, a WebSocket upgrade or a close")
    ->check(CLI::Range(1u, 600u));
  flag(app, "--admin-user", o.admin_user, "KULLSYNC_ADMIN_USER",
       "the admin feed's stream (ADMIN_SESSION_UPDATE, PROVIDER_HEALTH): with JWTs "
       "joined by tokens with admin: true, in legacy mode by this user");
  flag(app, "--log-level", o.log_level, "KULLSYNC_LOG_LEVEL",
       "trace|debug|info|warn|error|critical|off")
    ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
  flag(app, "--log-format", o.log_format, "KULLSYNC_LOG_FORMAT",
       "human (one line of text) or json (one object per line: time, level, logger, "
       "message)")->check(CLI::IsMember({"human", "json"}));
  flag(app, "--shards", o.shards, "KULLSYNC_SHARDS", "hub shards (0: one per hardware thread)")
    ->check(CLI::Range(size_t{0}, size_t{1024}));
  flag(app, "--io-threads", o.io_threads, "KULLSYNC_IO_THREADS",
       "socket threads; each serves the sockets it was given alone")
    ->check(CLI::Range(size_t{1}, size_t{64}));
  flag(app, "--workers", o.workers, "KULLSYNC_WORKERS",
       "actor scheduler threads (0: the hardware threads left after --io-threads, at "
       "least one)")->check(CLI::Range(size_t{0}, size_t{256}));
  flag(app, "--idle-workers", o.idle_workers, "KULLSYNC_IDLE_WORKERS",
       "what an idle actor thread does: block (spin briefly, then wait to be woken) or "
       "poll (CAF's default: 25 ms of 50 us sleeps first)")
    ->check(CLI::IsMember({"block", "poll"}));
  flag(app, "--actors-on-io", o.actors_on_io, "KULLSYNC_ACTORS_ON_IO",
       "on: sessions and hubs run on the io thread when a socket wakes them (no thread "
       "handoff per frame); off: always on the actor threads")
    ->check(CLI::IsMember({"on", "off"}));
  flag(app, "--max-frame-bytes", o.max_frame, "KULLSYNC_MAX_FRAME_BYTES",
       "largest client frame (larger: close 1009)")
    ->check(CLI::Range(size_t{128}, size_t{16} << 20));
  // Presence goes to every other socket of the user: joining N sockets costs
  // N^2/2 frames, which 256 keeps under 33,000.
  flag(app, "--max-sockets-per-user", o.max_sockets, "KULLSYNC_MAX_SOCKETS_PER_USER",
       "more sockets of one user: close 1008 (at most 256: presence fan-out grows "
       "with the square)")->check(CLI::Range(size_t{1}, size_t{256}));
  flag(app, "--max-queued-frames", o.max_queued_frames, "KULLSYNC_MAX_QUEUED_FRAMES",
       "frames queued for one socket before it is cut as a slow consumer (1008; 4009 "
       "on v2)")->check(CLI::Range(size_t{1}, size_t{1} << 24));
  flag(app, "--max-queued-bytes", o.max_queued_bytes, "KULLSYNC_MAX_QUEUED_BYTES",
       "bytes queued for one socket, likewise (at least 64 KiB: a SNAPSHOT waits there)")
    ->check(CLI::Range(size_t{64} << 10, size_t{1} << 34));
  flag(app, "--max-http-body", o.max_http_body, "KULLSYNC_MAX_HTTP_BODY",
       "largest HTTP body (larger: 413)")->check(CLI::Range(size_t{128}, size_t{64} << 20));
  flag(app, "--history-size", o.history_size, "KULLSYNC_HISTORY_SIZE",
       "v2: messages of each user's stream kept for resuming devices")
    ->check(CLI::Range(size_t{1}, size_t{1000000}));
  flag(app, "--history-ttl", o.history_ttl, "KULLSYNC_HISTORY_TTL",
       "v2: seconds a message is kept for resuming devices")->check(CLI::Range(1u, 86400u));
  flag(app, "--history-memory-mb", o.history_memory_mb, "KULLSYNC_HISTORY_MEMORY_MB",
       "v2: all users' histories together; past it the oldest messages go first")
    ->check(CLI::Range(size_t{1}, size_t{1} << 20));
  flag(app, "--max-replay", o.max_replay, "KULLSYNC_MAX_REPLAY",
       "v2: a resume missing more messages gets a SNAPSHOT instead (at most 3500: a "
       "socket queues 4096 frames)")->check(CLI::Range(size_t{1}, size_t{3500}));
  flag(app, "--limits", o.limits, "KULLSYNC_LIMITS",
       "off: no rate limits and no per-address caps (load tests only)")
    ->check(CLI::IsMember({"on", "off"}));
  flag(app, "--client-rate", o.client_rate, "KULLSYNC_CLIENT_RATE",
       "client messages per second per socket (past it: NACK rate_limited on v2, "
       "dropped on v1)")->check(finite_range(0.1, 1e6));
  flag(app, "--client-burst", o.client_burst, "KULLSYNC_CLIENT_BURST",
       "client messages a socket may save up; a second with more refusals than this "
       "closes it with 4008")->check(finite_range(1.0, 1e6));
  flag(app, "--max-sockets-per-ip", o.sockets_per_ip, "KULLSYNC_MAX_SOCKETS_PER_IP",
       "concurrent sockets from one address (more: close 1008)")
    ->check(CLI::Range(size_t{1}, size_t{10000000}));
  flag(app, "--upgrades-per-ip", o.upgrades_per_ip, "KULLSYNC_UPGRADES_PER_IP",
       "WebSocket upgrades per second from one address (more: close 4008)")
    ->check(finite_range(0.1, 1e6));
  flag(app, "--upgrade-burst", o.upgrade_burst, "KULLSYNC_UPGRADE_BURST",
       "upgrades one address may save up")->check(finite_range(1.0, 1e7));
  flag(app, "--api-key-rate", o.api_key_rate, "KULLSYNC_API_KEY_RATE",
       "HTTP requests per second per API key (more: 429)")->check(finite_range(0.1, 1e7));
  flag(app, "--api-key-burst", o.api_key_burst, "KULLSYNC_API_KEY_BURST",
       "requests one API key may save up")->check(finite_range(1.0, 1e7));
  flag(app, "--max-shoots-per-user", o.shoots_per_user, "KULLSYNC_MAX_SHOOTS_PER_USER",
       "active shoots remembered per user; past it the least recently updated goes")
    ->check(CLI::Range(size_t{1}, size_t{1000000}));
  flag(app, "--shoot-idle-ttl", o.shoot_idle_ttl, "KULLSYNC_SHOOT_IDLE_TTL",
       "seconds after which a shoot that stopped reporting is forgotten")
    ->check(CLI::Range(1u, 30u * 86400u));
  flag(app, "--user-state-ttl", o.user_state_ttl, "KULLSYNC_USER_STATE_TTL",
       "seconds after which a user with no device and no update is forgotten")
    ->check(CLI::Range(1u, 365u * 86400u));
  flag(app, "--state-memory-mb", o.state_memory_mb, "KULLSYNC_STATE_MEMORY_MB",
       "all users' remembered state together; past it the users idle longest go first")
    ->check(CLI::Range(size_t{1}, size_t{1} << 20));
  flag(app, "--broker", o.brokers, "KULLSYNC_BROKER",
       "a Redis instance this node shares streams with: redis://[[USER]:PASSWORD@]HOST[:PORT], "
       "or the master Sentinel names: redis+sentinel://[[USER]:PASSWORD@]HOST:PORT[,HOST:PORT...]"
       "/MASTER_NAME. Repeat (or comma-separate) for several: users are sharded over "
       "them; every node must list the same ones in the same order. None: this node alone");
  flag(app, "--node-id", o.node_id, "KULLSYNC_NODE_ID",
       "this node's name in a cluster (letters, digits, . _ -; default: the host name)")
    ->check([](const std::string& id) -> std::string {
      if (id.empty() || id.size() > 64)
        return "1 to 64 characters";
      for (unsigned char c : id)
        if (!std::isalnum(c) && c != '.' && c != '_' && c != '-')
          return "only letters, digits, '.', '_' and '-'";
      return {};
    });
  flag(app, "--position-check", o.position_check, "KULLSYNC_POSITION_CHECK",
       "seconds between checks of each followed stream against the broker (a lost "
       "message shows there); also the node's liveness window")
    ->check(CLI::Range(1u, 3600u));
}

namespace {

/// The flags that must agree with one another; the first pair that does not
/// is named.
void check_together(const server_options& o) {
  auto bad = [](const std::string& why) { throw std::invalid_argument(why); };
  if (o.user_state_ttl < o.history_ttl)
    bad("--user-state-ttl (" + std::to_string(o.user_state_ttl)
        + " s) must be at least --history-ttl (" + std::to_string(o.history_ttl)
        + " s): a user's state must outlive its history");
  if (o.user_state_ttl <= o.position_check)
    bad("--user-state-ttl (" + std::to_string(o.user_state_ttl)
        + " s) must be longer than --position-check (" + std::to_string(o.position_check)
        + " s), which keeps a followed user's state alive in a cluster");
  // A resume queues WELCOME, its replay and what arrives meanwhile before
  // the socket opens; a replay the queue cannot hold cuts the socket as a
  // slow consumer at every resume.
  if (o.max_queued_frames < o.max_replay + 64)
    bad("--max-queued-frames (" + std::to_string(o.max_queued_frames)
        + ") must exceed --max-replay (" + std::to_string(o.max_replay)
        + ") by at least 64: a socket queues a whole replay");
}

} // namespace

server::server_config make_server_config(const server_options& o) {
  check_together(o);
  server::server_config sc;
  sc.admin_user = o.admin_user;
  sc.shards = o.shards;
  sc.max_sockets_per_user = o.max_sockets;
  sc.history.size = o.history_size;
  sc.history.ttl_ms = int64_t{o.history_ttl} * 1000;
  sc.history.memory_bytes = o.history_memory_mb << 20;
  sc.history.max_replay = o.max_replay;
  sc.state.shoots_per_user = o.shoots_per_user;
  sc.state.shoot_idle_ms = int64_t{o.shoot_idle_ttl} * 1000;
  sc.state.user_idle_ms = int64_t{o.user_state_ttl} * 1000;
  sc.state.memory_bytes = o.state_memory_mb << 20;
  auto& l = sc.limits;
  if (o.limits == "off") {
    l.client_rate = l.upgrades_per_ip = l.api_key_rate = 0;
    l.sockets_per_ip = 0;
  } else {
    l.client_rate = o.client_rate;
    l.client_burst = o.client_burst;
    l.sockets_per_ip = o.sockets_per_ip;
    l.upgrades_per_ip = o.upgrades_per_ip;
    l.upgrade_burst = o.upgrade_burst;
    l.api_key_rate = o.api_key_rate;
    l.api_key_burst = o.api_key_burst;
  }
  server::auth_options ao;
  ao.mode = o.auth == "legacy"       ? server::auth_mode::legacy
            : o.auth == "jwt+legacy" ? server::auth_mode::jwt_and_legacy
                                     : server::auth_mode::jwt;
  if (!o.jwt_secret_file.empty())
    ao.hs256_secret = server::read_key_file(o.jwt_secret_file, "--jwt-secret-file");
  if (!o.jwt_public_key_file.empty())
    ao.public_key_pem = server::read_key_file(o.jwt_public_key_file,
                                              "--jwt-public-key-file");
  ao.audience = o.jwt_audience;
  ao.issuer = o.jwt_issuer;
  ao.leeway_ms = int64_t{o.jwt_leeway} * 1000;
  ao.max_lifetime_ms = int64_t{o.max_token_lifetime} * 1000;
  sc.max_token_lifetime_ms = ao.max_lifetime_ms;
  ao.admin_user = o.admin_user;
  sc.auth = server::make_authenticator(ao);
  if (!o.api_keys_file.empty())
    sc.api_keys = kullsync::app::read_api_keys(o.api_keys_file, "--api-keys-file");
  return sc;
}

bool make_listener_options(const server_options& o, beast_server_options& bo) {
  if (!parse_listen(o.listen, bo.host, bo.port)) {
    std::cerr << "--listen: '" << o.listen << "' is not HOST:PORT\n";
    return false;
  }
  bo.io_threads = o.io_threads;
  bo.actors_on_io = o.actors_on_io == "on";
  bo.ping_interval = std::chrono::seconds{o.ping_interval};
  bo.handshake_timeout = std::chrono::seconds{o.handshake_timeout};
  bo.max_frame_bytes = o.max_frame;
  bo.max_queued_frames = o.max_queued_frames;
  bo.max_queued_bytes = o.max_queued_bytes;
  bo.max_http_body = o.max_http_body;
  if (o.tls_cert.empty() != o.tls_key.empty()) {
    std::cerr << "TLS needs both --tls-cert and --tls-key\n";
    return false;
  }
  bo.tls_cert_file = o.tls_cert;
  bo.tls_key_file = o.tls_key;
  bo.trusted_proxies = o.trusted_proxies;
  bo.proxy_protocol = o.proxy_protocol == "on";
  return true;
}

} // namespace kullsync::app
