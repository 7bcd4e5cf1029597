// kullsync-ctl: the operators' API (docs/PROTOCOL.md, "Operators' API") at a
// shell. Tables for people, --json for scripts (the server's answer as it
// is). Exit 0 on success, 1 when the server answers an error (printed), 2 on
// a usage error.
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include "kullsync/messages/codec.hpp"
#include "kullsync/transports/http_client.hpp"
#include "kullsync/version.hpp"
#include "../shared/api_keys.hpp"
#include "../shared/cli_checks.hpp"

namespace json = boost::json;

namespace {

struct options {
  std::string url = "http://127.0.0.1:5000";
  std::string api_key_file;
  bool json = false;
  bool insecure = false;
  unsigned timeout = 10;
  // the command's
  std::string user;
  int64_t since = 0;
  int64_t limit = 100;
  std::string device;
  int code = 4009;
  std::string reason;
  int64_t before = -1;
  // publish: the messages themselves, written by the protocol's codec
  kullsync::msg::shoot_progress shoot;
  std::string status = "processing";
  kullsync::msg::credit_update credit;
  kullsync::msg::prompt_change prompt;
  std::string action;
  std::vector<std::string> users;
  std::string idempotency_key;
  // drain
  int64_t rate = 500;
  bool end_drain = false;
  bool drain_status = false;
};

/// Percent-encodes a path segment.
std::string path_segment(const std::string& s) {
  static const char hex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::string when(int64_t ms) {
  if (ms <= 0)
    return "-";
  std::time_t t = ms / 1000;
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", std::gmtime(&t));
  return std::string{buf} + " UTC";
}

std::string text_of(const json::value& v) {
  if (v.is_string())
    return std::string{v.get_string()};
  if (v.is_null())
    return "-";
  return json::serialize(v);
}

/// Columns padded to their widest cell.
void table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width;
  for (auto& r : rows)
    for (size_t i = 0; i < r.size(); ++i) {
      if (width.size() <= i)
        width.push_back(0);
      width[i] = std::max(width[i], r[i].size());
    }
  for (auto& r : rows) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size())
        line += std::string(width[i] - r[i].size() + 2, ' ');
    }
    std::cout << line << "\n";
  }
}

class client {
public:
  explicit client(const options& o) : o_(o) {
    if (!o.api_key_file.empty()) {
      // Read as the server reads its own (the same file may serve both).
      std::string key;
      try {
        key = kullsync::app::read_api_keys(o.api_key_file, "--api-key-file").front();
      } catch (const std::invalid_argument& e) {
        throw CLI::ValidationError(e.what());
      }
      headers_.emplace_back("Authorization", "Bearer " + key);
    }
  }

  /// The answer's JSON on success; else prints the error and returns null.
  std::optional<json::value> call(const std::string& method, const std::string& path,
                                  const std::string& body = {},
                                  const kullsync::header_list& extra = {}) {
    auto headers = headers_;
    headers.insert(headers.end(), extra.begin(), extra.end());
    auto r = kullsync::http_fetch(method, o_.url + "/api/sync" + path, body,
                                  std::chrono::seconds{o_.timeout}, o_.insecure, headers);
    if (r.status == 0) {
      auto why = "no answer from " + o_.url + ": " + r.error;
      std::cerr << "kullsync-ctl: " << why << "\n";
      json_error(0, why);
      return std::nullopt;
    }
    boost::system::error_code ec;
    auto v = json::parse(r.body, ec);
    if (r.status >= 300 || ec) {
      auto* e = !ec && v.is_object() ? v.get_object().if_contains("error") : nullptr;
      auto why = e ? text_of(*e) : r.body.substr(0, 300);
      std::cerr << "kullsync-ctl: " << r.status << ": " << why << "\n";
      json_error(r.status, why);
      return std::nullopt;
    }
    if (o_.json)
      std::cout << json::serialize(v) << "\n";
    return v;
  }

private:
  /// With --json a script reads the failure on stdout too: {"success":
  /// false, "status": HTTP status (0: no answer), "error": text}.
  void json_error(int status, const std::string& why) const {
    if (o_.json)
      std::cout << json::serialize(json::object{
                     {"success", false}, {"status", status}, {"error", why}})
                << "\n";
  }

  const options& o_;
  kullsync::header_list headers_;
};

int users(client& c, const options& o) {
  auto v = c.call("GET", "/users/" + path_segment(o.user));
  if (!v)
    return 1;
  if (o.json)
    return 0;
  auto& u = v->get_object();
  auto& h = u.at("history").get_object();
  std::cout << "user " << text_of(u.at("userId")) << "  epoch " << text_of(u.at("epoch"))
            << "  seq " << text_of(u.at("seq")) << "  history " << text_of(h.at("size"))
            << " (" << text_of(h.at("first")) << ".." << text_of(h.at("last")) << ")";
  if (auto* r = u.if_contains("redis"))
    std::cout << "  redis " << text_of(*r);
  std::cout << "\n";
  std::vector<std::vector<std::string>> rows{{"DEVICE", "NODE", "PROTOCOL", "CONNECTED"}};
  for (auto& d : u.at("devices").get_array()) {
    auto& o2 = d.get_object();
    rows.push_back({text_of(o2.at("deviceId")), text_of(o2.at("node")),
                    "v" + text_of(o2.at("protocol")), when(o2.at("connectedAt").to_number<int64_t>())});
  }
  if (rows.size() == 1)
    std::cout << "no device connected\n";
  else
    table(rows);
  return 0;
}

int history(client& c, const options& o) {
  auto v = c.call("GET", "/users/" + path_segment(o.user) + "/history?since="
                           + std::to_string(o.since) + "&limit=" + std::to_string(o.limit));
  if (!v)
    return 1;
  if (o.json)
    return 0;
  auto& p = v->get_object();
  std::cout << "epoch " << text_of(p.at("epoch")) << "  seq " << text_of(p.at("seq"))
            << (p.at("complete").as_bool() ? "" : "  (incomplete: the history no longer holds "
                                                   "what followed --since)")
            << "\n";
  std::vector<std::vector<std::string>> rows{{"SEQ", "TYPE", "TIME", "DEVICE", "DATA"}};
  for (auto& m : p.at("messages").get_array()) {
    auto& e = m.get_object();
    auto data = e.if_contains("data") ? json::serialize(e.at("data")) : std::string{};
    if (data.size() > 80)
      data = data.substr(0, 77) + "...";
    rows.push_back({text_of(e.at("seq")), text_of(e.at("type")),
                    when(e.at("timestamp").to_number<int64_t>()),
                    e.if_contains("deviceId") ? text_of(e.at("deviceId")) : "-", data});
  }
  table(rows);
  return 0;
}

int closed(const std::optional<json::value>& v, const options& o, const char* what) {
  if (!v)
    return 1;
  if (!o.json)
    std::cout << what << ": " << text_of(v->get_object().at("closed"))
              << " connection(s) told to close\n";
  return 0;
}

int nodes(client& c, const options& o) {
  auto v = c.call("GET", "/nodes");
  if (!v)
    return 1;
  if (o.json)
    return 0;
  std::vector<std::vector<std::string>> rows{
    {"NODE", "VERSION", "SOCKETS", "USERS", "STARTED", "READY"}};
  for (auto& n : v->get_object().at("nodes").get_array()) {
    auto& x = n.get_object();
    rows.push_back({text_of(x.at("nodeId")), text_of(x.at("version")), text_of(x.at("sockets")),
                    text_of(x.at("users")), when(x.at("startedAt").to_number<int64_t>()),
                    x.at("ready").as_bool() ? "yes" : "no"});
  }
  table(rows);
  return 0;
}

int drained(const std::optional<json::value>& v, const options& o) {
  if (!v)
    return 1;
  if (o.json)
    return 0;
  auto& d = v->get_object();
  if (auto* node = d.if_contains("nodeId"))
    std::cout << "node " << text_of(*node) << ": ";
  if (!d.at("draining").as_bool())
    std::cout << "not draining: ready (unless not ready for another reason), "
              << text_of(d.at("sockets")) << " socket(s)\n";
  else
    std::cout << "draining at " << text_of(d.at("rate")) << " socket(s) a second: "
              << text_of(d.at("sockets")) << " socket(s) open, " << text_of(d.at("left"))
              << " not yet told to close\n";
  return 0;
}

int published(const std::optional<json::value>& v, const options& o) {
  if (!v)
    return 1;
  if (o.json)
    return 0;
  auto& r = v->get_object();
  if (auto* seqs = r.if_contains("seqs")) {
    for (auto& [user, seq] : seqs->get_object())
      std::cout << "published to " << std::string{user} << " at seq " << text_of(seq) << "\n";
  } else {
    std::cout << "published at seq " << (r.if_contains("seq") ? text_of(r.at("seq")) : "-")
              << "\n";
  }
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  options o;
  CLI::App app{"kullsync-ctl: the operators' API of kullsync-server (who is connected, a "
               "user's stream, disconnect and revoke, the cluster's nodes, a node's drain, publish)"};
  app.set_version_flag("--version", std::string{"kullsync-ctl "} + kullsync::version);
  app.require_subcommand(1);
  app.add_option("--url", o.url, "the server (any node of a cluster)")
    ->envname("KULLSYNC_URL")
    ->capture_default_str();
  app.add_option("--api-key-file", o.api_key_file, "a file whose first line is an API key")
    ->envname("KULLSYNC_API_KEY_FILE")
    ->check(CLI::ExistingFile);
  app.add_flag("--json", o.json, "print the server's answer as JSON (for scripts)");
  app.add_flag("--insecure", o.insecure, "https: do not verify the server's certificate");
  app.add_option("--timeout", o.timeout, "seconds to wait for an answer")
    ->check(CLI::Range(1u, 600u))
    ->capture_default_str();

  auto* u = app.add_subcommand("users", "a user's devices on every node and stream");
  u->add_option("user", o.user, "the user's id")->required();
  auto* h = app.add_subcommand("history", "what a user's stream holds");
  h->add_option("user", o.user, "the user's id")->required();
  h->add_option("--since", o.since, "after this position")->check(kullsync::app::whole_number);
  h->add_option("--limit", o.limit, "at most this many (1-1000)")
    ->check(CLI::Range(1, 1000))
    ->capture_default_str();
  auto* d = app.add_subcommand("disconnect", "close a user's sockets on every node");
  d->add_option("user", o.user, "the user's id")->required();
  d->add_option("--device", o.device, "only this device's (default: every device)")
    ->check(kullsync::app::non_empty);
  d->add_option("--code", o.code,
                "1000, 4002 (do not retry with this token), 4003 (get a new token) or "
                "4009 (resume now)")
    ->check(CLI::IsMember({1000, 4002, 4003, 4009}))
    ->capture_default_str();
  d->add_option("--reason", o.reason, "the close reason the device reads");
  auto* r = app.add_subcommand("revoke", "refuse a user's tokens issued until now, on every "
                                         "node, and close the user's sockets (4002)");
  r->add_option("user", o.user, "the user's id")->required();
  r->add_option("--before", o.before, "tokens issued before this epoch-ms time (default: now)")
    ->check(kullsync::app::whole_number);
  app.add_subcommand("nodes", "the cluster's live nodes");
  auto* dr = app.add_subcommand("drain", "the node at --url (its own address, not a "
                                         "balancer's): not ready, and its sockets closed "
                                         "(1001) at a pace so that they move elsewhere");
  dr->add_option("--rate", o.rate, "sockets closed a second")
    ->check(CLI::Range(int64_t{1}, int64_t{1'000'000}))
    ->capture_default_str();
  auto* dr_end = dr->add_flag("--end", o.end_drain, "end the drain: ready again (the "
                                                   "sockets closed are not called back)");
  auto* dr_status = dr->add_flag("--status", o.drain_status, "only say where the drain stands");
  dr_end->excludes(dr_status);
  auto* p = app.add_subcommand("publish", "publish as the backend does");
  p->require_subcommand(1);
  p->add_option("--idempotency-key", o.idempotency_key,
                "a retry with the same key publishes nothing again")
    ->check(kullsync::app::non_empty);
  auto* ps = p->add_subcommand("shoot-progress", "a shoot's progress to a user's devices");
  ps->add_option("--user", o.user, "the user's id")->required();
  o.shoot.provider = "ctl";
  ps->add_option("--shoot", o.shoot.shoot_id, "the shoot's id")->required();
  ps->add_option("--status", o.status, "where the shoot is")
    ->check(CLI::IsMember({"queued", "processing", "completed", "failed"}))
    ->capture_default_str();
  ps->add_option("--processed", o.shoot.processed_count, "images processed")
    ->check(kullsync::app::whole_number);
  ps->add_option("--total", o.shoot.total_count, "images in the shoot")
    ->check(kullsync::app::whole_number);
  ps->add_option("--provider", o.shoot.provider, "what processes it")->capture_default_str();
  ps->add_option("--current-image", o.shoot.current_image, "the image being processed");
  ps->add_option("--eta", o.shoot.eta, "seconds left")
    ->check(kullsync::app::finite_range(0, 1e9));
  ps->add_option("--error", o.shoot.error_message, "why the shoot failed");
  auto* pc = p->add_subcommand("credit-update", "a user's credit balance");
  pc->add_option("--user", o.credit.user_id, "the user's id")->required();
  pc->add_option("--balance", o.credit.new_balance, "the new balance")->required();
  pc->add_option("--change", o.credit.change, "what changed it by")->required();
  pc->add_option("--reason", o.credit.reason, "why, shown to the user");
  auto* pp = p->add_subcommand("prompt-change", "a prompt's change to its users");
  pp->add_option("--prompt", o.prompt.prompt_id, "the prompt's id")->required();
  pp->add_option("--action", o.action, "what happened to it")
    ->check(CLI::IsMember({"created", "updated", "deleted", "voted"}))
    ->required();
  pp->add_option("--users", o.users, "comma-separated user ids")->delimiter(',')->required();

  // Options of a command's parents may come after it too
  // (`users u1 --json`, `publish shoot-progress ... --idempotency-key k`).
  for (auto* sub : {u, h, d, r, p, ps, pc, pp, dr, app.get_subcommand("nodes")})
    sub->fallthrough();
  try {
    app.parse(argc, argv);
    while (!o.url.empty() && o.url.back() == '/') // http://host:port/ names the same server
      o.url.pop_back();
  } catch (const CLI::Success& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // A mistyped command leaves its word unparsed: name it, not "a
    // subcommand is required".
    auto rest = app.remaining();
    if (app.get_subcommands().empty() && !rest.empty()) {
      std::cerr << "kullsync-ctl: unknown command '" << rest.front()
                << "' (users, history, disconnect, revoke, nodes, drain, publish; --help)\n";
      return 2;
    }
    app.exit(e);
    return 2;
  }
  try {
    client c{o};
    auto q = [](const std::string& s) { return kullsync::msg::json_string(s); };
    if (u->parsed())
      return users(c, o);
    if (h->parsed())
      return history(c, o);
    if (d->parsed()) {
      std::string body = "{\"code\":" + std::to_string(o.code);
      if (!o.device.empty())
        body += ",\"deviceId\":" + q(o.device);
      if (!o.reason.empty())
        body += ",\"reason\":" + q(o.reason);
      body += "}";
      return closed(c.call("POST", "/users/" + path_segment(o.user) + "/disconnect", body), o,
                    "disconnected");
    }
    if (r->parsed()) {
      auto body = o.before >= 0 ? "{\"before\":" + std::to_string(o.before) + "}"
                                : std::string{"{}"};
      return closed(c.call("POST", "/users/" + path_segment(o.user) + "/revoke", body), o,
                    "revoked");
    }
    if (app.got_subcommand("nodes"))
      return nodes(c, o);
    if (dr->parsed()) {
      if (o.drain_status)
        return drained(c.call("GET", "/drain"), o);
      if (o.end_drain)
        return drained(c.call("DELETE", "/drain"), o);
      return drained(c.call("POST", "/drain", "{\"rate\":" + std::to_string(o.rate) + "}"), o);
    }
    kullsync::header_list extra;
    if (!o.idempotency_key.empty())
      extra.emplace_back("Idempotency-Key", o.idempotency_key);
    if (ps->parsed()) {
      kullsync::msg::from_string(o.status, o.shoot.status); // checked by --status
      auto body = kullsync::msg::to_json(o.shoot);
      body.insert(1, "\"userId\":" + q(o.user) + ",");
      return published(c.call("POST", "/shoot-progress", body, extra), o);
    }
    if (pc->parsed())
      return published(c.call("POST", "/credit-update", kullsync::msg::to_json(o.credit), extra),
                       o);
    kullsync::msg::from_string(o.action, o.prompt.action); // checked by --action
    auto body = kullsync::msg::to_json(o.prompt);
    std::string ids;
    for (auto& x : o.users)
      ids += (ids.empty() ? "" : ",") + q(x);
    body.insert(body.size() - 1, ",\"userIds\":[" + ids + "]");
    return published(c.call("POST", "/prompt-change", body, extra), o);
  } catch (const CLI::Error& e) {
    std::cerr << "kullsync-ctl: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "kullsync-ctl: " << e.what() << "\n";
    return 1;
  }
}
