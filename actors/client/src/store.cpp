#include "kullsync/client/store.hpp"

#include <cstdio>
#include <fstream>
#include <sstream>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include "kullsync/log.hpp"
#include "kullsync/messages/codec.hpp"
#include "kullsync/messages/json_value.hpp"

namespace json = boost::json;

namespace kullsync {

std::optional<saved_stream> memory_store::load_stream() {
  std::lock_guard<std::mutex> guard{mtx_};
  return stream_;
}

std::optional<saved_outbox> memory_store::load_outbox() {
  std::lock_guard<std::mutex> guard{mtx_};
  return outbox_;
}

void memory_store::save_stream(const saved_stream& x) {
  std::lock_guard<std::mutex> guard{mtx_};
  stream_ = x;
}

void memory_store::save_outbox(const saved_outbox& x) {
  std::lock_guard<std::mutex> guard{mtx_};
  outbox_ = x;
}

namespace {

/// {"stream":{"epoch","seq","state"},"outbox":{"idPrefix","nextId","messages":[...]}}
class file_store final : public memory_store {
public:
  explicit file_store(std::string path) : path_(std::move(path)) {
    read();
  }

  void save_stream(const saved_stream& x) override {
    memory_store::save_stream(x);
    write();
  }

  void save_outbox(const saved_outbox& x) override {
    memory_store::save_outbox(x);
    write();
  }

private:
  void read() {
    std::ifstream in{path_};
    if (!in)
      return;
    std::stringstream text;
    text << in.rdbuf();
    boost::system::error_code ec;
    auto v = json::parse(text.str(), ec);
    if (ec || !v.is_object())
      return log::get("client.store")->warn("{}: not a saved stream, ignored", path_);
    auto& o = v.get_object();
    if (auto* s = o.if_contains("stream"); s && s->is_object()) {
      auto& so = s->get_object();
      auto* epoch = so.if_contains("epoch");
      auto* seq = so.if_contains("seq");
      auto* state = so.if_contains("state");
      if (epoch && epoch->is_string() && seq && (seq->is_uint64() || seq->is_int64()) && state) {
        if (auto st = msg::from_json_value<msg::user_state>(*state)) {
          saved_stream x;
          x.epoch = std::string{epoch->get_string()};
          x.seq = seq->to_number<uint64_t>();
          x.state = std::move(*st);
          memory_store::save_stream(x);
        }
      }
    }
    if (auto* b = o.if_contains("outbox"); b && b->is_object()) {
      auto& bo = b->get_object();
      saved_outbox x;
      if (auto* p = bo.if_contains("idPrefix"); p && p->is_string())
        x.id_prefix = std::string{p->get_string()};
      if (auto* n = bo.if_contains("nextId"); n && (n->is_uint64() || n->is_int64()))
        x.next_id = n->to_number<uint64_t>();
      if (auto* ms = bo.if_contains("messages"); ms && ms->is_array())
        for (auto& m : ms->get_array())
          if (auto cm = msg::from_json_value<msg::client_message>(m); cm && cm->id)
            x.messages.push_back(std::move(*cm));
      memory_store::save_outbox(x);
    }
  }

  void write() {
    auto s = load_stream();
    auto b = load_outbox();
    json::object o;
    if (s) {
      boost::system::error_code ec;
      o["stream"] = json::object{{"epoch", s->epoch}, {"seq", s->seq},
                                 {"state", json::parse(msg::to_json(s->state), ec)}};
    }
    if (b) {
      json::array ms;
      for (auto& m : b->messages) {
        boost::system::error_code ec;
        ms.push_back(json::parse(msg::encode(m), ec));
      }
      o["outbox"] = json::object{{"idPrefix", b->id_prefix}, {"nextId", b->next_id},
                                 {"messages", std::move(ms)}};
    }
    std::lock_guard<std::mutex> guard{write_mtx_};
    auto tmp = path_ + ".tmp";
    {
      std::ofstream out{tmp, std::ios::trunc};
      out << json::serialize(o);
      if (!out)
        return log::get("client.store")->warn("{}: cannot write", tmp);
    }
    if (std::rename(tmp.c_str(), path_.c_str()) != 0)
      log::get("client.store")->warn("{}: cannot replace", path_);
  }

  std::string path_;
  std::mutex write_mtx_;
};

} // namespace

std::shared_ptr<client_store> make_file_store(std::string path) {
  return std::make_shared<file_store>(std::move(path));
}

} // namespace kullsync
