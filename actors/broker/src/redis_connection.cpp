#include "redis_connection.hpp"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <cstring>

#include <boost/asio/post.hpp>

#include "broker_clock.hpp"

namespace kullsync::broker {

namespace net = boost::asio;

namespace {

redis_value copy(const redisReply* r) {
  redis_value v;
  switch (r->type) {
    case REDIS_REPLY_STRING:
      v.kind = redis_value::string;
      v.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_STATUS:
      v.kind = redis_value::status;
      v.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ERROR:
      v.kind = redis_value::error;
      v.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_INTEGER:
      v.kind = redis_value::integer;
      v.number = r->integer;
      break;
    case REDIS_REPLY_ARRAY:
      v.kind = redis_value::array;
      v.elements.reserve(r->elements);
      for (size_t i = 0; i < r->elements; ++i)
        v.elements.push_back(copy(r->element[i]));
      break;
    default:
      break; // nil
  }
  return v;
}

redis_connection* of(void* p) {
  return static_cast<redis_connection*>(p);
}

} // namespace

redis_connection::redis_connection(net::io_context& io, std::string host, uint16_t port,
                                   handlers h)
  : io_(io), host_(std::move(host)), port_(port), h_(std::move(h)), connect_timer_(io) {
}

redis_connection::~redis_connection() {
  shutdown();
}

void redis_connection::shutdown() {
  connect_timer_.cancel();
  up_ = false;
  if (!ac_)
    return;
  auto* ac = ac_;
  ac->ev.data = nullptr; // no hook may reach this object any more
  ac->data = nullptr;
  ac_ = nullptr;
  if (fd_) {
    fd_->cancel();
    fd_->release(); // hiredis closes it
    fd_.reset();
  }
  redisAsyncFree(ac); // pending commands get their error now
}

void redis_connection::drop(const std::string& why) {
  if (!ac_)
    return;
  shutdown();
  report_down(why);
}

void redis_connection::connect(std::chrono::milliseconds timeout) {
  // hiredis connects without blocking (the host is an address: no lookup).
  ac_ = redisAsyncConnect(host_.c_str(), port_);
  if (!ac_ || ac_->err) {
    std::string why = ac_ ? ac_->errstr : "out of memory";
    if (ac_)
      redisAsyncFree(ac_);
    ac_ = nullptr;
    report_down(why);
    return;
  }
  ac_->data = this;
  ac_->ev.data = this;
  ac_->ev.addRead = &add_read;
  ac_->ev.delRead = &del_read;
  ac_->ev.addWrite = &add_write;
  ac_->ev.delWrite = &del_write;
  ac_->ev.cleanup = &cleanup;
  fd_ = std::make_unique<net::posix::stream_descriptor>(io_, ac_->c.fd);
  redisAsyncSetConnectCallback(ac_, &on_connect);
  redisAsyncSetDisconnectCallback(ac_, &on_disconnect);
  add_write(this); // a non-blocking connect completes when writable
  connect_timer_.expires_after(timeout);
  connect_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (ec || self->up_ || !self->ac_)
      return;
    self->drop("connect timed out");
  });
}

void redis_connection::command(const std::vector<std::string>& argv,
                               std::function<void(redis_value)> done) {
  if (!up_ || !ac_) {
    done(redis_value::not_sent("not connected"));
    return;
  }
  std::vector<const char*> args;
  std::vector<size_t> lens;
  for (auto& a : argv) {
    args.push_back(a.data());
    lens.push_back(a.size());
  }
  auto* cb = new std::function<void(redis_value)>(std::move(done));
  if (redisAsyncCommandArgv(ac_, &on_reply, cb, static_cast<int>(args.size()), args.data(),
                            lens.data())
      != REDIS_OK) {
    auto f = std::move(*cb);
    delete cb;
    f(redis_value::not_sent("command not sent"));
  }
}

void redis_connection::subscribe(const std::vector<std::string>& channels, bool on) {
  if (!up_ || !ac_ || channels.empty())
    return;
  std::vector<const char*> args{on ? "SUBSCRIBE" : "UNSUBSCRIBE"};
  std::vector<size_t> lens{std::strlen(args.front())};
  for (auto& c : channels) {
    args.push_back(c.data());
    lens.push_back(c.size());
  }
  redisAsyncCommandArgv(ac_, &on_pubsub, this, static_cast<int>(args.size()), args.data(),
                        lens.data());
}

void redis_connection::add_read(void* p) {
  if (auto* c = of(p)) {
    c->want_read_ = true;
    c->wait_read();
  }
}

void redis_connection::del_read(void* p) {
  if (auto* c = of(p))
    c->want_read_ = false;
}

void redis_connection::add_write(void* p) {
  if (auto* c = of(p)) {
    c->want_write_ = true;
    c->wait_write();
  }
}

void redis_connection::del_write(void* p) {
  if (auto* c = of(p))
    c->want_write_ = false;
}

void redis_connection::cleanup(void* p) {
  // hiredis frees the context next: nothing may use it after this.
  if (auto* c = of(p)) {
    c->want_read_ = c->want_write_ = false;
    c->ac_ = nullptr;
    if (c->fd_) {
      c->fd_->cancel();
      c->fd_->release();
      c->fd_.reset();
    }
  }
}

void redis_connection::wait_read() {
  if (reading_ || !fd_)
    return;
  reading_ = true;
  fd_->async_wait(net::posix::descriptor_base::wait_read,
                  [self = shared_from_this()](boost::system::error_code ec) {
                    self->reading_ = false;
                    if (ec || !self->ac_ || !self->want_read_)
                      return;
                    self->last_read_ms_.store(steady_ms(), std::memory_order_relaxed);
                    redisAsyncHandleRead(self->ac_);
                    if (self->ac_ && self->want_read_)
                      self->wait_read();
                  });
}

void redis_connection::wait_write() {
  if (writing_ || !fd_)
    return;
  writing_ = true;
  fd_->async_wait(net::posix::descriptor_base::wait_write,
                  [self = shared_from_this()](boost::system::error_code ec) {
                    self->writing_ = false;
                    if (ec || !self->ac_ || !self->want_write_)
                      return;
                    redisAsyncHandleWrite(self->ac_);
                    if (self->ac_ && self->want_write_)
                      self->wait_write();
                  });
}

void redis_connection::on_connect(const redisAsyncContext* ac, int status) {
  auto* c = of(ac->data);
  if (!c)
    return;
  c->connect_timer_.cancel();
  if (status != REDIS_OK) {
    // hiredis frees the context after this returns (cleanup runs).
    c->report_down(ac->errstr ? ac->errstr : "connect failed");
    return;
  }
  c->up_ = true;
  if (c->h_.up)
    c->h_.up();
}

void redis_connection::on_disconnect(const redisAsyncContext* ac, int status) {
  auto* c = of(ac->data);
  if (!c)
    return;
  c->up_ = false;
  c->report_down(status == REDIS_OK ? "closed" : (ac->errstr ? ac->errstr : "lost"));
}

void redis_connection::on_reply(redisAsyncContext*, void* reply, void* privdata) {
  auto* cb = static_cast<std::function<void(redis_value)>*>(privdata);
  auto v = reply ? copy(static_cast<redisReply*>(reply))
                 : redis_value::cut_off("connection lost");
  (*cb)(std::move(v));
  delete cb;
}

void redis_connection::on_pubsub(redisAsyncContext*, void* reply, void* privdata) {
  auto* c = of(privdata);
  auto* r = static_cast<redisReply*>(reply);
  if (!c || !r || r->type != REDIS_REPLY_ARRAY || r->elements < 3)
    return;
  auto* kind = r->element[0];
  auto* channel = r->element[1];
  if (kind->type != REDIS_REPLY_STRING || channel->type != REDIS_REPLY_STRING)
    return;
  std::string_view k{kind->str, kind->len};
  std::string ch{channel->str, channel->len};
  if (k == "message" && r->element[2]->type == REDIS_REPLY_STRING) {
    if (c->h_.message)
      c->h_.message(std::move(ch), std::string{r->element[2]->str, r->element[2]->len});
  } else if (k == "subscribe") {
    if (c->h_.subscribed)
      c->h_.subscribed(std::move(ch));
  }
}

void redis_connection::report_down(std::string why) {
  up_ = false;
  // Later: the handler may connect again, which must not happen inside
  // hiredis' own callback.
  net::post(io_, [self = shared_from_this(), why = std::move(why)] {
    if (self->h_.down)
      self->h_.down(why);
  });
}

} // namespace kullsync::broker
