#pragma once

// kullsync-server's flags: each is declared once here (name, environment
// variable, check, default) and turned into the server's and the listener's
// configurations.

#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "kullsync/server/server.hpp"
#include "kullsync/transports/beast_server.hpp"

namespace kullsync::app {

struct server_options {
  std::string config;
  std::string listen = "0.0.0.0:5000";
  std::string auth = "jwt";
  std::string jwt_secret_file;
  std::string jwt_public_key_file;
  std::string jwt_audience;
  std::string jwt_issuer;
  unsigned jwt_leeway = 0;
  unsigned max_token_lifetime = 86400;
  std::string revocations_file;
  std::string api_keys_file;
  std::string tls_cert;
  std::string tls_key;
  std::vector<std::string> trusted_proxies;
  std::string proxy_protocol = "off";
  unsigned ping_interval = 30;
  unsigned handshake_timeout = 10;
  std::string admin_user = "admin";
  std::string log_level = "info";
  std::string log_format = "human";
  size_t shards = 0;
  size_t io_threads = 1;
  size_t workers = 0;
  std::string idle_workers = "block";
  std::string actors_on_io = "on";
  size_t max_frame = 64 * 1024;
  size_t max_sockets = 64;
  size_t max_queued_frames = 4096;
  size_t max_queued_bytes = 4 * 1024 * 1024;
  size_t max_http_body = 64 * 1024;
  size_t history_size = 1000;
  unsigned history_ttl = 600;
  size_t history_memory_mb = 256;
  size_t max_replay = 2000;
  std::string limits = "on";
  double client_rate = 50;
  double client_burst = 100;
  size_t sockets_per_ip = 1000;
  double upgrades_per_ip = 50;
  double upgrade_burst = 200;
  double api_key_rate = 1000;
  double api_key_burst = 2000;
  size_t shoots_per_user = 1000;
  unsigned shoot_idle_ttl = 3600;
  unsigned user_state_ttl = 86400;
  size_t state_memory_mb = 256;
  std::vector<std::string> brokers;
  std::string node_id;
  unsigned position_check = 30;
};

/// Declares every flag on `app`, bound to `o`.
void add_flags(CLI::App& app, server_options& o);

/// The server actors' configuration. Throws std::invalid_argument with a
/// message naming the flag (a key file that cannot be read, a bad key).
server::server_config make_server_config(const server_options& o);

/// The listener's; false (and a message on stderr) when --listen is not
/// HOST:PORT.
bool make_listener_options(const server_options& o, beast_server_options& out);

} // namespace kullsync::app
