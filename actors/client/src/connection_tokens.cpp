// The connection's signed tokens: a fresh one from the provider before a dial
// that needs it, an in-band REFRESH ahead of the expiry, and what a refusal
// (4001, 4002, 4003) means.
#include "connection_state.hpp"
#include "kullsync/messages/codec.hpp"
#include "kullsync/transports/close_code.hpp"

namespace kullsync::conn {

/// With a provider: whether the next dial needs a fresh token (none yet, the
/// server said it expired, or it expires within 10 s).
bool needs_token(conn_ptr self) {
  auto& st = self->state;
  if (!st.tokens)
    return false;
  return st.token_stale || st.token.empty()
         || (st.expires_local && *st.expires_local - now_ms(self) < 10'000);
}

/// The least wait before asking again for a token that did not expire later.
constexpr int64_t refresh_floor_ms = 5'000;

/// The server announced the token's expiry (WELCOME, REFRESHED, whose
/// timestamp `server_now` is the server's clock then): with a provider, a
/// fresh token goes in band (REFRESH) once 80% of the time left has passed,
/// and no later than 10 s before. The time left is read on the server's
/// clock, which closes the socket (4003): a device whose clock is minutes
/// behind would otherwise refresh after the expiry, one ahead in a loop.
void note_expiry(conn_ptr self, std::optional<int64_t> at, int64_t server_now) {
  auto& st = self->state;
  auto before = std::exchange(st.expires_at, at);
  st.expires_local.reset();
  if (!at)
    return;
  auto now = now_ms(self);
  auto left = *at - (server_now > 0 ? server_now : now);
  st.expires_local = now + left;
  if (!st.tokens)
    return;
  auto lead = std::max<int64_t>(10'000, left / 5);
  auto delay = std::max<int64_t>(0, left - lead);
  if (before && *at <= *before) {
    // The token gained nothing (a provider that hands out the one it cached
    // until it expires): asked again at once, it would REFRESH in a loop
    // into the server's rate limit (4008).
    st.log->warn("{}: the new token expires no later than the last ({} ms); next refresh in {} ms", st.who,
                 *at, refresh_floor_ms);
    delay = std::max(delay, refresh_floor_ms);
  }
  self->delayed_send(self, std::chrono::milliseconds{delay}, refresh_atom::value, st.epoch);
}

void refresh(conn_ptr self) {
  auto& st = self->state;
  auto epoch = st.epoch;
  self->request(st.tokens, std::chrono::seconds{30}, token_atom::value)
    .then(
      [=](std::string& token) {
        auto& st = self->state;
        if (epoch != st.epoch || !is_open(st.phase))
          return;
        st.token = token; // also for the next dial
        msg::client_message m;
        m.type = msg::client_type::refresh;
        m.type_name = std::string{msg::to_string(m.type)};
        m.body = msg::refresh{std::move(token)};
        self->send(st.transport, send_atom::value, msg::encode(m));
      },
      [=](const caf::error& err) {
        self->state.log->warn("{}: no token to refresh with: {}", self->state.who, self->system().render(err));
      });
}

/// The server refused the token: retrying cannot help (4001, 4002), or only
/// with a new one (4003, which needs a provider). The engine stops; only the
/// application's connect() dials again, and only with a token the server did
/// not refuse (from the provider).
void refused(conn_ptr self, uint16_t code, std::string why) {
  auto& st = self->state;
  st.log->error("{}: link {}: {}", st.who, st.status.link, why);
  st.token_refused = true;
  st.token_stale = true; // with a provider, connect() asks it for a new one
  auto next = st.status;
  next.retry_in = caf::timespan{0};
  next.error = code == close_code::no_token        ? "no token"
               : code == close_code::token_expired ? "token expired"
                                                   : "invalid token";
  enter(self, link_phase::failed, std::move(next));
}

} // namespace kullsync::conn
