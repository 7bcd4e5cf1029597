#include "kullsync/server/revocations.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "kullsync/common/numbers.hpp"
#include "kullsync/log.hpp"

namespace kullsync::server {

std::string to_text(const revocation& r) {
  return std::to_string(r.before_ms) + " " + std::to_string(r.until_ms) + " " + r.user;
}

std::optional<revocation> revocation_from_text(std::string_view text) {
  auto a = text.find(' ');
  auto b = a == std::string_view::npos ? a : text.find(' ', a + 1);
  if (b == std::string_view::npos || b + 1 >= text.size())
    return std::nullopt;
  auto before = to_int<int64_t>(text.substr(0, a));
  auto until = to_int<int64_t>(text.substr(a + 1, b - a - 1));
  if (!before || !until)
    return std::nullopt;
  return revocation{std::string{text.substr(b + 1)}, *before, *until};
}

bool revocation_list::merge_locked(const revocation& r) {
  auto [i, added] = by_user_.emplace(r.user, r);
  if (added)
    return true;
  auto& kept = i->second;
  if (r.before_ms <= kept.before_ms && r.until_ms <= kept.until_ms)
    return false;
  kept.before_ms = std::max(kept.before_ms, r.before_ms);
  kept.until_ms = std::max(kept.until_ms, r.until_ms);
  return true;
}

bool revocation_list::add(const revocation& r) {
  std::vector<std::function<void(const std::string&)>> tell;
  std::optional<table> copy;
  uint64_t version = 0;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (!merge_locked(r))
      return false;
    version = ++version_;
    if (!path_.empty())
      copy = by_user_;
    tell = observers_;
  }
  if (copy)
    if (auto why = save(*copy, version))
      log::get("server.revoke")->error("revocations not saved (a restart forgets the "
                                       "newest): {}", *why);
  for (auto& f : tell)
    f(r.user);
  return true;
}

bool revocation_list::revoked(const std::string& user, std::optional<int64_t> issued_at_ms,
                              int64_t now_ms) const {
  std::lock_guard<std::mutex> guard{mtx_};
  auto i = by_user_.find(user);
  if (i == by_user_.end() || i->second.until_ms <= now_ms)
    return false;
  auto before = i->second.before_ms;
  return !issued_at_ms || *issued_at_ms < before - before % 1000;
}

std::vector<revocation> revocation_list::in_force(int64_t now_ms) {
  std::lock_guard<std::mutex> guard{mtx_};
  std::vector<revocation> out;
  for (auto i = by_user_.begin(); i != by_user_.end();) {
    if (i->second.until_ms <= now_ms) {
      i = by_user_.erase(i);
    } else {
      out.push_back(i->second);
      ++i;
    }
  }
  return out;
}

void revocation_list::observe(std::function<void(const std::string&)> f) {
  std::lock_guard<std::mutex> guard{mtx_};
  observers_.push_back(std::move(f));
}

std::optional<std::string> revocation_list::keep_in(const std::string& path, int64_t now_ms) {
  table copy;
  uint64_t version = 0;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    path_ = path;
    std::ifstream in{path};
    if (!in) {
      if (errno != ENOENT)
        return path + ": " + std::strerror(errno);
    } else {
      std::string line;
      for (size_t n = 1; std::getline(in, line); ++n) {
        auto r = revocation_from_text(line);
        if (!r)
          return path + ":" + std::to_string(n) + ": not \"<before> <until> <user>\"";
        if (r->until_ms > now_ms)
          merge_locked(*r);
      }
    }
    copy = by_user_;
    version = ++version_;
  }
  return save(copy, version); // also proves the file can be written
}

std::optional<std::string> revocation_list::save(const table& t, uint64_t version) {
  std::lock_guard<std::mutex> guard{file_mtx_};
  if (version <= saved_version_)
    return std::nullopt; // a later list was written already
  // Written whole to a new file, then renamed over the old: a crash leaves
  // one or the other, never half of one.
  auto tmp = path_ + ".new";
  {
    std::ofstream out{tmp, std::ios::trunc};
    if (!out)
      return tmp + ": " + std::strerror(errno);
    for (auto& [user, r] : t)
      if (user.find('\n') == std::string::npos) // never in a valid id
        out << to_text(r) << '\n';
    out.flush();
    if (!out)
      return tmp + ": cannot be written";
  }
  if (std::rename(tmp.c_str(), path_.c_str()) != 0)
    return path_ + ": " + std::strerror(errno);
  saved_version_ = version;
  return std::nullopt;
}

} // namespace kullsync::server
