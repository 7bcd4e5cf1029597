#include "view.hpp"

#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <cmath>
#include <ctime>
#include <sstream>

#include <langinfo.h>
#include <ncurses.h>

namespace json = boost::json;

namespace kullsync::console {

void view_clock::update(const sync_state& prev, const sync_state& next) {
  auto now = steady::now();
  if (!(prev.connection == next.connection))
    status_at = now;
  for (auto& [id, p] : next.shoots) {
    auto i = prev.shoots.find(id);
    bool fresh = i == prev.shoots.end() || !(i->second == p);
    if (fresh && p.eta)
      eta_at[id] = {*p.eta, now};
    else if (!p.eta)
      eta_at.erase(id);
  }
  for (auto i = eta_at.begin(); i != eta_at.end();)
    i = next.shoots.count(i->first) ? std::next(i) : eta_at.erase(i);
}

std::optional<double> view_clock::eta_left(const msg::shoot_progress& p) const {
  auto i = eta_at.find(p.shoot_id);
  if (i == eta_at.end())
    return std::nullopt;
  auto spent = std::chrono::duration<double>(steady::now() - i->second.second).count();
  return std::max(0.0, i->second.first - spent);
}

double view_clock::retry_left(const sync_state& s) const {
  auto total = std::chrono::duration<double>(s.connection.retry_in).count();
  auto spent = std::chrono::duration<double>(steady::now() - status_at).count();
  return std::max(0.0, total - spent);
}

std::string stream_text(const sync_state& s) {
  auto& x = s.stream;
  if (s.connection.protocol.empty() && x.epoch.empty())
    return "v1";
  std::string t = (s.connection.protocol.empty() ? "v2 (not connected)" : "v2")
                  + std::string{" seq "} + std::to_string(x.seq);
  if (x.resumes + x.resyncs > 0)
    t += x.recovered ? " · recovered, " + std::to_string(x.replayed) + " replayed"
                     : std::string{" · resynced from a snapshot"};
  if (x.outbox > 0)
    t += " · " + std::to_string(x.outbox) + " unacknowledged";
  if (x.outbox_dropped > 0)
    t += " · " + std::to_string(x.outbox_dropped) + " refused (outbox full)";
  return t;
}

std::string json_line(const sync_state& s, const view_clock& c) {
  json::object o;
  o["connection"] = std::string{to_string(s.connection.state)};
  o["attempt"] = s.connection.attempt;
  o["error"] = s.connection.error.empty() ? json::value(nullptr)
                                          : json::value(s.connection.error);
  o["credits"] = s.credits ? json::value(*s.credits) : json::value(nullptr);
  json::array shoots;
  for (auto& [id, p] : s.shoots) {
    json::object x;
    x["shootId"] = p.shoot_id;
    x["status"] = std::string{msg::to_string(p.status)};
    x["processedCount"] = p.processed_count;
    x["totalCount"] = p.total_count;
    x["progress"] = p.progress();
    auto eta = c.eta_left(p);
    x["eta"] = eta ? json::value(std::round(*eta)) : json::value(nullptr);
    x["currentImage"] = p.current_image ? json::value(*p.current_image)
                                        : json::value(nullptr);
    x["provider"] = p.provider;
    x["errorMessage"] = p.error_message ? json::value(*p.error_message)
                                        : json::value(nullptr);
    shoots.push_back(std::move(x));
  }
  o["shoots"] = std::move(shoots);
  json::array devices;
  for (auto& d : s.devices)
    devices.push_back(json::value(d.device_id));
  o["devices"] = std::move(devices);
  if (s.last_prompt)
    o["lastPrompt"] = json::object{{"promptId", s.last_prompt->prompt_id},
                                   {"action", msg::to_string(s.last_prompt->action)}};
  else
    o["lastPrompt"] = nullptr;
  if (s.last_credit)
    o["lastCreditChange"] = json::object{{"change", s.last_credit->change},
                                         {"reason", s.last_credit->reason}};
  o["lastSyncMs"] = s.last_sync_ms;
  o["url"] = s.connection.url;
  o["protocol"] = s.connection.protocol.empty() ? "v1" : "v2";
  auto& x = s.stream;
  o["stream"] = json::object{{"epoch", x.epoch},         {"seq", x.seq},
                             {"recovered", x.recovered}, {"replayed", x.replayed},
                             {"resumes", x.resumes},     {"resyncs", x.resyncs},
                             {"duplicates", x.duplicates}, {"gaps", x.gaps},
                             {"outbox", x.outbox},       {"outboxDropped", x.outbox_dropped},
                             {"refused", x.refused},     {"deferred", x.deferred}};
  auto& t = s.telemetry;
  auto hist = [](const histogram_counts& h) {
    return json::object{{"count", h.count}, {"p50", h.quantile(0.5)},
                        {"p99", h.quantile(0.99)}, {"max", h.max}};
  };
  o["telemetry"] = json::object{
    {"dials", t.dials},           {"connects", t.connects},
    {"reconnects", t.reconnects}, {"timeToLiveMs", hist(t.time_to_live)},
    {"attemptsPerReconnect", hist(t.attempts)}, {"ackRttMs", hist(t.ack_rtt)},
    {"decodeErrors", t.decode_errors}, {"replayed", t.replayed},
    {"resumes", t.resumes},       {"snapshots", t.snapshots},
    {"gaps", t.gaps},             {"duplicates", t.duplicates},
    {"queueDepth", t.queue_depth}, {"queueDropped", t.queue_dropped}};
  return json::serialize(o);
}

std::string telemetry_text(const client_telemetry& t) {
  std::ostringstream os;
  os << "link: " << t.connects << " connects, " << t.reconnects << " reconnects";
  if (t.time_to_live.count > 0)
    os << " (live again p50 " << t.time_to_live.quantile(0.5) << " ms, max "
       << t.time_to_live.max << " ms, " << t.attempts.max << " dials at most)";
  if (t.ack_rtt.count > 0)
    os << " · ack p50 " << t.ack_rtt.quantile(0.5) << " ms";
  os << " · queue " << t.queue_depth << " (" << t.queue_dropped << " dropped) · "
     << t.gaps << " gaps, " << t.decode_errors << " bad frames";
  return os.str();
}

std::string plain_line(const sync_state& s, const view_clock& c) {
  std::ostringstream os;
  os << '[' << to_string(s.connection.state);
  if (s.connection.state == connection_state::reconnecting)
    os << " #" << s.connection.attempt << " in "
       << static_cast<int>(std::ceil(c.retry_left(s))) << "s";
  if (s.connection.state == connection_state::failed)
    os << ": " << s.connection.error;
  os << "] credits=";
  if (s.credits)
    os << *s.credits;
  else
    os << '-';
  for (auto& [id, p] : s.shoots)
    os << " | " << id << ' ' << msg::to_string(p.status) << ' '
       << static_cast<int>(p.progress() * 100) << "% (" << p.processed_count << '/'
       << p.total_count << ')';
  os << " | devices=" << s.devices.size() << " | " << stream_text(s);
  return os.str();
}

// -- ncurses ---------------------------------------------------------------------

namespace {

enum colors { c_green = 1, c_yellow, c_red, c_dim, c_bar, c_title };

/// Block glyphs on a UTF-8 terminal, ASCII elsewhere.
struct glyphs {
  const char* full = "#";
  const char* empty = "-";
  const char* on = "*";
  const char* off = "o";
};

glyphs g;

std::string clock_time(int64_t epoch_ms) {
  if (epoch_ms == 0)
    return "never";
  std::time_t t = epoch_ms / 1000;
  char buf[16];
  std::strftime(buf, sizeof(buf), "%H:%M:%S", std::localtime(&t));
  return buf;
}

std::string mmss(double seconds) {
  auto s = static_cast<int>(std::lround(seconds));
  char buf[16];
  std::snprintf(buf, sizeof(buf), "%d:%02d", s / 60, s % 60);
  return buf;
}

std::string fit(std::string s, int width) {
  if (width <= 0)
    return {};
  if (static_cast<int>(s.size()) > width)
    s = s.substr(0, std::max(0, width - 1)) + "~";
  return s;
}

void rule(int y, const char* title) {
  int w = COLS;
  attron(COLOR_PAIR(c_dim));
  mvhline(y, 0, ACS_HLINE, w);
  attroff(COLOR_PAIR(c_dim));
  attron(A_BOLD);
  mvprintw(y, 2, " %s ", title);
  attroff(A_BOLD);
}

void draw_status(const sync_state& s, const view_clock& c) {
  auto& st = s.connection;
  int color = 0;
  std::string text;
  switch (st.state) {
    case connection_state::connected:
      color = c_green;
      text = "connected";
      break;
    case connection_state::connecting:
      color = c_yellow;
      text = st.attempt > 0 ? "connecting (attempt " + std::to_string(st.attempt) + ")"
                            : "connecting";
      break;
    case connection_state::reconnecting:
      color = c_yellow;
      text = "reconnecting: attempt " + std::to_string(st.attempt) + " in "
             + std::to_string(static_cast<int>(std::ceil(c.retry_left(s)))) + "s";
      break;
    case connection_state::failed:
      color = c_red;
      text = "failed: " + st.error;
      break;
    case connection_state::disconnected:
      text = "offline";
      break;
  }
  if (color)
    attron(COLOR_PAIR(color) | A_BOLD);
  mvprintw(1, 1, "%s %s", st.state == connection_state::connected ? g.on : g.off,
           fit(text, COLS / 2).c_str());
  if (color)
    attroff(COLOR_PAIR(color) | A_BOLD);
  mvprintw(1, COLS / 2, "%s", fit("last sync " + clock_time(s.last_sync_ms), COLS / 2 - 1).c_str());
  mvprintw(2, 1, "%s", fit("stream " + stream_text(s), COLS - 2).c_str());
}

void draw_credits(const sync_state& s, int y) {
  attron(A_BOLD);
  mvprintw(y, 1, "Credits %s",
           s.credits ? std::to_string(*s.credits).c_str() : "-");
  attroff(A_BOLD);
  if (s.last_credit) {
    auto& lc = *s.last_credit;
    auto sign = lc.change >= 0 ? "+" : "";
    attron(COLOR_PAIR(lc.change >= 0 ? c_green : c_yellow));
    printw("   %s%lld", sign, static_cast<long long>(lc.change));
    attroff(COLOR_PAIR(lc.change >= 0 ? c_green : c_yellow));
    printw("  %s", fit(lc.reason, COLS - getcurx(stdscr) - 4).c_str());
  }
}

int draw_shoot(const msg::shoot_progress& p, const view_clock& c, int y) {
  int w = COLS;
  int color = p.status == msg::shoot_status::failed      ? c_red
              : p.status == msg::shoot_status::completed ? c_green
                                                         : c_bar;
  mvprintw(y, 1, "%s", fit(p.shoot_id, 18).c_str());
  mvprintw(y, 20, "%-10s", std::string{msg::to_string(p.status)}.c_str());
  int bar = std::max(10, w - 60);
  int filled = static_cast<int>(p.progress() * bar);
  mvaddch(y, 31, '[');
  attron(COLOR_PAIR(color));
  for (int i = 0; i < bar; ++i)
    addstr(i < filled ? g.full : g.empty);
  attroff(COLOR_PAIR(color));
  addch(']');
  printw(" %3d%% %lld/%lld", static_cast<int>(p.progress() * 100),
         static_cast<long long>(p.processed_count),
         static_cast<long long>(p.total_count));
  if (auto eta = c.eta_left(p); eta && !msg::is_terminal(p.status))
    printw(" ETA %s", mmss(*eta).c_str());
  std::string detail;
  if (p.error_message)
    detail = "error: " + *p.error_message;
  else if (p.current_image)
    detail = *p.current_image;
  if (!p.provider.empty())
    detail += (detail.empty() ? "" : "  via ") + p.provider;
  if (p.error_message)
    attron(COLOR_PAIR(c_red));
  else
    attron(COLOR_PAIR(c_dim));
  mvprintw(y + 1, 20, "%s", fit(detail, w - 21).c_str());
  attroff(COLOR_PAIR(c_red));
  attroff(COLOR_PAIR(c_dim));
  return y + 2;
}

} // namespace

dashboard::dashboard() {
  setlocale(LC_ALL, "");
  if (std::string{nl_langinfo(CODESET)} == "UTF-8")
    g = glyphs{"\u2588", "\u2591", "\u25CF", "\u25CB"};
  initscr();
  cbreak();
  noecho();
  keypad(stdscr, TRUE);
  curs_set(0);
  if (has_colors()) {
    start_color();
    use_default_colors();
    init_pair(c_green, COLOR_GREEN, -1);
    init_pair(c_yellow, COLOR_YELLOW, -1);
    init_pair(c_red, COLOR_RED, -1);
    init_pair(c_dim, COLOR_CYAN, -1);
    init_pair(c_bar, COLOR_BLUE, -1);
    init_pair(c_title, COLOR_MAGENTA, -1);
  }
}

dashboard::~dashboard() {
  endwin();
}

int dashboard::key(std::chrono::milliseconds wait) {
  timeout(static_cast<int>(wait.count()));
  return getch();
}

void dashboard::draw(const sync_state& s, const view_clock& c,
                     const screen_info& info) {
  erase();
  attron(COLOR_PAIR(c_title) | A_BOLD);
  mvprintw(0, 1, "kullsync");
  attroff(COLOR_PAIR(c_title) | A_BOLD);
  printw("  %s", fit(info.endpoint + " (" + info.env + ")  user " + info.user
                       + "  device " + info.device,
                     COLS - 12).c_str());
  draw_status(s, c);
  draw_credits(s, 3);
  rule(5, "Active shoots");
  int y = 6;
  int bottom = LINES - 6;
  if (s.shoots.empty())
    mvprintw(y++, 1, "no active shoots");
  for (auto& [id, p] : s.shoots) {
    if (y + 1 > bottom) {
      mvprintw(y, 1, "... %zu more", s.shoots.size());
      break;
    }
    y = draw_shoot(p, c, y);
  }
  rule(LINES - 5, "Devices");
  std::string devs;
  for (auto& d : s.devices)
    devs += (devs.empty() ? "" : ", ") + d.device_id
            + (d.device_id == info.device ? " (this)" : "");
  mvprintw(LINES - 4, 1, "%s", fit(devs.empty() ? "none known" : devs, COLS - 2).c_str());
  std::string prompt = s.last_prompt ? "last prompt change: " + s.last_prompt->prompt_id
                                         + " " + std::string{msg::to_string(s.last_prompt->action)}
                                     : "no prompt changes";
  mvprintw(LINES - 3, 1, "%s", fit(prompt, COLS - 2).c_str());
  mvprintw(LINES - 2, 1, "%s", fit(telemetry_text(s.telemetry), COLS - 2).c_str());
  attron(A_REVERSE);
  mvprintw(LINES - 1, 0, "%s",
           fit(" q quit   r reconnect now   e switch environment ", COLS).c_str());
  attroff(A_REVERSE);
  refresh();
}

} // namespace kullsync::console
