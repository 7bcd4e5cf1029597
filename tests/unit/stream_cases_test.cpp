// The table of stream cases (stream_cases.hpp) against both implementations:
// the C++ stream core, and the Redis broker's Lua scripts with its codec on a
// real redis-server of the test's own (Debian's, on a free port).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "redis_codec.hpp"
#include "redis_scripts.hpp"
#include "stream/stream_core.hpp"
#include "stream_cases.hpp"

using namespace kullsync;
using namespace kullsync::server;
namespace cases = kullsync::test::cases;

namespace {

/// One implementation of a user's stream, as the table drives it.
/// A publish's answer, with the state change its message carries (if it
/// was published).
struct published {
  publish_receipt receipt;
  state_change change;
};

class impl {
public:
  virtual ~impl() = default;
  /// Publishes in order (one batch where the implementation takes batches).
  virtual std::vector<published> publish(const std::vector<publish_request>& batch) = 0;
  virtual stream_range read(const std::string& user, const std::string& epoch,
                            uint64_t since, uint64_t upto, int64_t now) = 0;
  virtual stream_head head(const std::string& user, int64_t now) = 0;
  virtual void failover() = 0;
  /// A step at `now` (the case's milliseconds) comes next.
  virtual void at(int64_t /*now*/) {}
};

class core_impl final : public impl {
public:
  explicit core_impl(const cases::limits& l) : core_("c", to_limits(l)) {}

  std::vector<published> publish(const std::vector<publish_request>& batch) override {
    std::vector<published> out;
    for (auto& req : batch) {
      message_ptr m;
      auto r = core_.publish(req, &m);
      out.push_back({r, m ? m->state : state_change{}});
    }
    return out;
  }
  stream_range read(const std::string& user, const std::string& epoch, uint64_t since,
                    uint64_t upto, int64_t now) override {
    return core_.read(user, epoch, since, upto, now);
  }
  stream_head head(const std::string& user, int64_t now) override {
    return core_.head(user, now, {});
  }
  void failover() override { core_.new_run(); }

private:
  static stream_limits to_limits(const cases::limits& l) {
    stream_limits x;
    x.history_size = l.history_size;
    x.max_shoots = l.max_shoots;
    x.field_idle_ms = l.idle_ms;
    x.dedup_ttl_ms = l.dedup_ttl_ms;
    return x;
  }
  stream_core core_;
};

/// A redis-server of the test's own, on a free port, without persistence.
class redis_process {
public:
  redis_process() {
    int s = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    socklen_t len = sizeof(a);
    ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    ::close(s);
    pid_ = ::fork();
    if (pid_ == 0) {
      if (int null = ::open("/dev/null", O_WRONLY); null >= 0) {
        ::dup2(null, 1);
        ::dup2(null, 2);
      }
      auto port = std::to_string(port_);
      ::execl("/usr/bin/redis-server", "redis-server", "--port", port.c_str(), "--bind",
              "127.0.0.1", "--save", "", "--appendonly", "no", "--loglevel", "warning",
              static_cast<char*>(nullptr));
      ::_exit(127);
    }
  }
  ~redis_process() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  /// A connection once the server answers (null if it never did).
  redisContext* connect() const {
    for (int i = 0; i < 200; ++i) {
      if (auto* c = redisConnect("127.0.0.1", port_); c && !c->err)
        return c;
      else if (c)
        redisFree(c);
      ::usleep(25'000);
    }
    return nullptr;
  }

private:
  pid_t pid_ = -1;
  uint16_t port_ = 0;
};

/// A reply as the broker's codec reads it.
broker::redis_value to_value(const redisReply* r) {
  broker::redis_value v;
  switch (r->type) {
    case REDIS_REPLY_STRING:
      v.kind = broker::redis_value::string;
      v.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_STATUS:
      v.kind = broker::redis_value::status;
      v.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ERROR:
      v.kind = broker::redis_value::error;
      v.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_INTEGER:
      v.kind = broker::redis_value::integer;
      v.number = r->integer;
      break;
    case REDIS_REPLY_ARRAY:
      v.kind = broker::redis_value::array;
      for (size_t i = 0; i < r->elements; ++i)
        v.elements.push_back(to_value(r->element[i]));
      break;
    default:
      v.kind = broker::redis_value::nil;
  }
  return v;
}

/// The Lua scripts with the broker's codec, on a real Redis: what a cluster
/// node sends and reads, without its networking.
class redis_impl final : public impl {
public:
  redis_impl(const redis_process& p, const cases::limits& l) {
    cfg_.history_size = l.history_size;
    cfg_.max_shoots = l.max_shoots;
    cfg_.field_idle_ms = l.idle_ms;
    cfg_.dedup_ttl_ms = l.dedup_ttl_ms;
    redis_clock_ = l.redis_clock;
    cmd_ = p.connect();
    sub_ = p.connect();
    if (!cmd_ || !sub_)
      return;
    command({"FLUSHALL"});
    std::string texts[] = {broker::publish_script(cfg_), broker::scripts::head,
                           broker::scripts::read};
    for (int k = 0; k < 3; ++k)
      sha_[k] = command({"SCRIPT", "LOAD", texts[k]}).str;
    for (auto node : {"n1", "n2"})
      command({"SET", cfg_.prefix + "alive:" + node, "1"});
  }
  ~redis_impl() override {
    if (cmd_)
      redisFree(cmd_);
    if (sub_)
      redisFree(sub_);
  }
  bool ok() const { return cmd_ && sub_ && !sha_[0].empty(); }

  /// On Redis's clock (key expiry), the case's time passes for real.
  void at(int64_t now) override {
    if (!redis_clock_)
      return;
    if (!origin_)
      origin_ = {now, std::chrono::steady_clock::now()};
    std::this_thread::sleep_until(origin_->second
                                  + std::chrono::milliseconds{now - origin_->first});
  }

  /// One script call for the whole batch, as the broker makes it.
  std::vector<published> publish(const std::vector<publish_request>& batch) override {
    std::vector<const publish_request*> reqs;
    for (auto& req : batch) {
      subscribe(broker::keys_for(cfg_.prefix, req.user).channel);
      reqs.push_back(&req);
    }
    auto c = broker::publish_call(cfg_.prefix, reqs, run(), epoch());
    auto got = broker::parse_publish(eval(0, c.call), batch.size());
    EXPECT_TRUE(got) << "publish: " << (got ? "" : to_string(got.error()));
    if (!got)
      return std::vector<published>(batch.size());
    std::vector<published> out(batch.size());
    size_t records = 0;
    for (size_t i = 0; i < batch.size(); ++i) {
      auto& outcome = (*got)[i];
      EXPECT_TRUE(outcome) << "publish refused: " << to_string(outcome.error());
      if (!outcome)
        continue;
      out[c.order[i]].receipt = *outcome;
      records += outcome->duplicate ? 0 : 1;
    }
    // The channel messages every following node gets: a user's records in
    // the order of its publishes.
    std::map<std::string, std::deque<message_ptr>> heard;
    while (records > 0) {
      redisReply* m = nullptr;
      if (redisGetReply(sub_, reinterpret_cast<void**>(&m)) != REDIS_OK || !m)
        break;
      if (m->type == REDIS_REPLY_ARRAY && m->elements == 3) {
        auto channel = std::string{m->element[1]->str, m->element[1]->len};
        auto user = broker::user_of_channel(cfg_.prefix, channel).value_or("?");
        auto ms = broker::parse_channel_message(user, {m->element[2]->str, m->element[2]->len});
        EXPECT_FALSE(ms.empty()) << "the channel message parses";
        for (auto& x : ms)
          heard[user].push_back(x);
        records -= std::min(records, ms.size());
      }
      freeReplyObject(m);
    }
    for (size_t i = 0; i < batch.size(); ++i) {
      auto& req = batch[i];
      if (out[i].receipt.duplicate)
        continue;
      auto& q = heard[req.user];
      EXPECT_FALSE(q.empty()) << "a channel record for each publish";
      if (q.empty())
        continue;
      auto msg = q.front();
      q.pop_front();
      out[i].change = msg->state;
      EXPECT_EQ(msg->seq, out[i].receipt.seq);
      EXPECT_EQ(msg->epoch(), out[i].receipt.epoch);
      EXPECT_EQ(v1_frame(*msg).str(), req.frame);
      EXPECT_EQ(msg->presence.has_value(), req.presence.has_value());
    }
    return out;
  }

  stream_range read(const std::string& user, const std::string& epoch, uint64_t since,
                    uint64_t upto, int64_t now) override {
    auto c = broker::read_call(broker::keys_for(cfg_.prefix, user), run(), this->epoch(),
                               epoch, since, upto, now, cfg_);
    auto r = broker::parse_read(eval(2, c), user);
    EXPECT_TRUE(r);
    return r ? *r : stream_range{};
  }
  stream_head head(const std::string& user, int64_t now) override {
    auto c = broker::head_call(broker::keys_for(cfg_.prefix, user), run(), epoch(),
                               cfg_.prefix + "alive:", now, cfg_);
    auto h = broker::parse_head(eval(1, c));
    EXPECT_TRUE(h);
    return h ? *h : stream_head{};
  }
  void failover() override { ++run_; } // a replica: another run id

  /// The script's answer to one batch, without checking the channel.
  std::vector<broker::publish_outcome> outcomes(const std::vector<publish_request>& batch) {
    std::vector<const publish_request*> reqs;
    for (auto& req : batch)
      reqs.push_back(&req);
    auto c = broker::publish_call(cfg_.prefix, reqs, run(), epoch());
    auto got = broker::parse_publish(eval(0, c.call), batch.size());
    EXPECT_TRUE(got) << (got ? "" : to_string(got.error()));
    std::vector<broker::publish_outcome> out(batch.size(), publish_receipt{});
    if (got)
      for (size_t i = 0; i < batch.size(); ++i)
        out[c.order[i]] = (*got)[i];
    return out;
  }
  /// A command as someone else's client would send it.
  broker::redis_value raw(std::vector<std::string> argv) { return command(std::move(argv)); }
  std::string key(const std::string& user, const std::string& what) const {
    return cfg_.prefix + "{" + user + "}:" + what;
  }

private:
  std::string run() const { return "run" + std::to_string(run_); }
  std::string epoch() { return "e" + std::to_string(++epochs_); }

  broker::redis_value command(std::vector<std::string> argv) {
    std::vector<const char*> a;
    std::vector<size_t> n;
    for (auto& x : argv) {
      a.push_back(x.data());
      n.push_back(x.size());
    }
    auto* r = static_cast<redisReply*>(
      redisCommandArgv(cmd_, static_cast<int>(a.size()), a.data(), n.data()));
    if (!r)
      return broker::redis_value::cut_off("no reply");
    auto v = to_value(r);
    freeReplyObject(r);
    return v;
  }
  broker::redis_value eval(int k, const broker::script_call& c) {
    std::vector<std::string> argv{"EVALSHA", sha_[k], std::to_string(c.keys.size())};
    argv.insert(argv.end(), c.keys.begin(), c.keys.end());
    argv.insert(argv.end(), c.args.begin(), c.args.end());
    return command(std::move(argv));
  }
  void subscribe(const std::string& channel) {
    if (!subscribed_.insert(channel).second)
      return;
    auto* r = static_cast<redisReply*>(redisCommand(sub_, "SUBSCRIBE %b", channel.data(),
                                                    channel.size()));
    if (r)
      freeReplyObject(r);
  }

  broker::redis_broker_config cfg_;
  redisContext* cmd_ = nullptr;
  redisContext* sub_ = nullptr;
  std::string sha_[3];
  std::set<std::string> subscribed_;
  int run_ = 1;
  int epochs_ = 0;
  bool redis_clock_ = false;
  std::optional<std::pair<int64_t, std::chrono::steady_clock::time_point>> origin_;
};

publish_request request_of(const cases::step& s) {
  publish_request req;
  req.user = s.user;
  // A node announces its own devices only.
  req.origin = s.presence ? s.presence->node : "n1";
  req.frame = s.frame;
  req.numbered = s.numbered;
  req.dedup_key = s.dedup;
  req.state = s.state;
  req.presence = s.presence;
  req.present = s.present;
  req.now = s.now;
  return req;
}

/// Plays one case; every difference from the table is a failure naming the
/// case and the step. `batched`: the publishes between two other steps go
/// as one batch (of one node), with the same expectations as one by one.
void play(impl& x, const cases::stream_case& c, bool batched) {
  std::map<std::string, std::string> epoch; // last seen, per user
  for (size_t i = 0; i < c.steps.size();) {
    auto& s = c.steps[i];
    auto trace = [&](size_t k) {
      return std::string{c.name} + ", step " + std::to_string(k + 1)
             + (batched ? " (batched)" : "");
    };
    auto check_epoch = [&](const cases::step& s, const std::string& e) {
      auto& last = epoch[s.user];
      if (!last.empty()) {
        EXPECT_EQ(e != last, s.new_epoch) << "epoch " << last << " -> " << e;
      }
      last = e;
    };
    x.at(s.now);
    if (s.op == cases::step::publish) {
      auto j = i + 1;
      // A case on Redis's clock plays step by step: a batch has one time.
      while (batched && !c.lim.redis_clock && j < c.steps.size()
             && c.steps[j].op == cases::step::publish
             && request_of(c.steps[j]).origin == request_of(s).origin)
        ++j;
      std::vector<publish_request> batch;
      for (auto k = i; k < j; ++k)
        batch.push_back(request_of(c.steps[k]));
      auto got = x.publish(batch);
      for (auto k = i; k < j; ++k) {
        SCOPED_TRACE(trace(k));
        auto& st = c.steps[k];
        auto& r = got[k - i];
        EXPECT_EQ(r.receipt.seq, st.numbered ? st.seq : 0u);
        EXPECT_EQ(r.receipt.duplicate, st.duplicate);
        if (!st.duplicate) {
          EXPECT_EQ(r.change.field, st.changed);
          EXPECT_EQ(r.change.until, st.until);
          EXPECT_EQ(r.change.updated, st.changed.empty() ? 0 : st.now);
        }
        check_epoch(st, r.receipt.epoch);
      }
      i = j;
      continue;
    }
    SCOPED_TRACE(trace(i));
    switch (s.op) {
      case cases::step::read: {
        auto e = s.other_epoch ? std::string{"not-the-epoch"} : epoch[s.user];
        auto r = x.read(s.user, e, s.since, s.upto, s.now);
        EXPECT_EQ(r.complete, s.complete);
        std::vector<uint64_t> seqs;
        for (auto& m : r.messages) {
          seqs.push_back(m->seq);
          EXPECT_EQ(m->epoch(), r.epoch);
        }
        EXPECT_EQ(seqs, s.seqs);
        break;
      }
      case cases::step::head: {
        auto h = x.head(s.user, s.now);
        EXPECT_EQ(h.top, s.top);
        if (s.first) {
          EXPECT_EQ(h.first, *s.first);
        }
        std::vector<std::string> fields, devices;
        for (auto& f : h.state)
          fields.push_back(f.field);
        for (auto& d : h.devices) {
          devices.push_back(d.node + "|" + d.device);
          EXPECT_EQ(d.protocol, d.device == "ipad" ? 2 : 1) << "the protocol kept with it";
          EXPECT_EQ(d.connected_at, 77);
        }
        std::sort(fields.begin(), fields.end());
        std::sort(devices.begin(), devices.end());
        EXPECT_EQ(fields, s.fields);
        EXPECT_EQ(devices, s.devices);
        check_epoch(s, h.epoch);
        break;
      }
      case cases::step::failover:
        x.failover();
        break;
      case cases::step::publish:
        break;
    }
    ++i;
  }
}

} // namespace

TEST(stream_cases, the_core_keeps_every_rule) {
  for (auto& c : cases::all()) {
    core_impl x{c.lim};
    play(x, c, false);
  }
}

TEST(stream_cases, the_redis_scripts_keep_every_rule) {
  if (::access("/usr/bin/redis-server", X_OK) != 0)
    GTEST_SKIP() << "no /usr/bin/redis-server (Debian's redis-server)";
  redis_process redis;
  for (bool batched : {false, true})
    for (auto& c : cases::all()) {
      redis_impl x{redis, c.lim};
      ASSERT_TRUE(x.ok()) << "redis-server did not answer";
      play(x, c, batched);
    }
}

// Keys the scripts did not write (another client's SET on a user's stream,
// a state value that is not one, a stream past its #seq): the publish
// script refuses that user's publishes alone, leaves no dedup answer behind
// for what it refused (a retry with its key would be told it was
// published), and reads what it can rather than failing half way.
TEST(stream_cases, the_publish_script_refuses_a_users_bad_keys_alone) {
  if (::access("/usr/bin/redis-server", X_OK) != 0)
    GTEST_SKIP() << "no /usr/bin/redis-server (Debian's redis-server)";
  redis_process redis;
  redis_impl x{redis, cases::limits{}};
  ASSERT_TRUE(x.ok()) << "redis-server did not answer";
  auto credit_of = [](const std::string& user, const std::string& key = {}) {
    auto s = cases::credit(0);
    s.user = user;
    s.dedup = key;
    return request_of(s);
  };
  // Another type at the stream's own key (the meta and state hash).
  x.raw({"SET", x.key("bad", "st"), "garbage"});
  auto got = x.outcomes({credit_of("good"), credit_of("bad", "K"), credit_of("good")});
  ASSERT_EQ(got.size(), 3u);
  ASSERT_TRUE(got[0]);
  EXPECT_EQ(got[0]->seq, 1u);
  ASSERT_TRUE(got[2]) << "the user batched after the bad one is published";
  EXPECT_EQ(got[2]->seq, 2u);
  ASSERT_FALSE(got[1]);
  EXPECT_EQ(got[1].error(), server::make_error(server::broker_errc::unavailable));
  EXPECT_EQ(x.raw({"EXISTS", x.key("bad", "d:K")}).number, 0) << "no dedup answer left";

  // Another type at the stream (`s`): refused before any dedup answer stays.
  x.raw({"SET", x.key("bad2", "s"), "garbage"});
  x.raw({"HSET", x.key("bad2", "st"), "#epoch", "e-old", "#run", "run1", "#seq", "3"});
  got = x.outcomes({credit_of("bad2", "K2")});
  EXPECT_FALSE(got[0]);
  EXPECT_EQ(x.raw({"EXISTS", x.key("bad2", "d:K2")}).number, 0);

  // A state value that is not one: taken as absent, replaced.
  auto first = x.outcomes({credit_of("odd")});
  ASSERT_TRUE(first[0]);
  x.raw({"HSET", x.key("odd", "st"), "credits", "not a state value", "shoot:old", "nor this"});
  auto s = cases::shoot("new", 5, 0, true);
  s.user = "odd";
  got = x.outcomes({credit_of("odd"), request_of(s)});
  ASSERT_TRUE(got[0]) << to_string(got[0].error());
  ASSERT_TRUE(got[1]) << "a new shoot makes room past a value that is not a state";
  EXPECT_EQ(got[1]->seq, first[0]->seq + 2);

  // A stream whose entries run past #seq (left by a call that failed half
  // way): numbered after them, not refused at every publish.
  auto top = got[1]->seq;
  x.raw({"XADD", x.key("odd", "s"), std::to_string(top + 2) + "-0", "f", "orphan"});
  got = x.outcomes({credit_of("odd", "K3")});
  ASSERT_TRUE(got[0]) << to_string(got[0].error());
  EXPECT_EQ(got[0]->seq, top + 3);
  got = x.outcomes({credit_of("odd", "K3")});
  ASSERT_TRUE(got[0]);
  EXPECT_TRUE(got[0]->duplicate);
  EXPECT_EQ(got[0]->seq, top + 3) << "its key answers the position it got";
  // Past an entry since deleted: after the stream's last id, not its last entry.
  auto id = std::to_string(top + 5) + "-0";
  x.raw({"XADD", x.key("odd", "s"), id, "f", "orphan"});
  x.raw({"XDEL", x.key("odd", "s"), id});
  got = x.outcomes({credit_of("odd")});
  ASSERT_TRUE(got[0]) << to_string(got[0].error());
  EXPECT_EQ(got[0]->seq, top + 6);
}
