#pragma once

// Private to the server side of kullsync_transports.
//
// Every use of CAF 0.17's internals by the server's io threads lives here, so
// that a CAF upgrade touches this file and its .cpp only:
// - io_unit: a CAF execution_unit whose turns run on an io thread, as CAF's
//   own multiplexer runs brokers (caf::resumable, exec_later);
// - tell(): a send from the io thread with that unit as its context
//   (abstract_actor::eq_impl), so a woken marked actor runs there too;
// - the mark of actors that may run there (a flag bit CAF leaves free);
// - inline_actor: an actor whose "mailbox" is a function called wherever a
//   message is sent to it (caf::monitorable_actor::enqueue), dispatched by
//   its typed protocol's signatures.

#include <atomic>
#include <cstdint>
#include <type_traits>
#include <utility>

#include <caf/actor_cast.hpp>
#include <caf/actor_system.hpp>
#include <caf/execution_unit.hpp>
#include <caf/make_actor.hpp>
#include <caf/mailbox_element.hpp>
#include <caf/monitorable_actor.hpp>
#include <caf/resumable.hpp>
#include <caf/type_erased_tuple.hpp>
#include <caf/typed_actor.hpp>

namespace kullsync::detail {

class io_unit;

/// One actor's turn, posted to an io thread. A turn that never runs (its
/// io_context is destroyed first) still releases its actor, as CAF's
/// multiplexer does.
class io_turn {
public:
  io_turn(io_unit* unit, caf::resumable* job) : unit_(unit), job_(job) {}
  io_turn(io_turn&& x) noexcept
    : unit_(x.unit_), job_(std::exchange(x.job_, nullptr)) {}
  io_turn(const io_turn&) = delete;
  io_turn& operator=(const io_turn&) = delete;
  io_turn& operator=(io_turn&&) = delete;
  ~io_turn();
  void operator()();
  /// Takes the job back out (a turn that was not posted after all).
  caf::resumable* release() { return std::exchange(job_, nullptr); }

private:
  io_unit* unit_;
  caf::resumable* job_;
};

/// Runs marked actors' turns on one io thread (see io_thread.hpp); any other
/// actor it wakes goes to CAF's scheduler, as a send from anywhere would.
class io_unit final : public caf::execution_unit {
public:
  /// Where turns go: the io thread's context. `post` moves the turn there,
  /// or leaves it alone and returns false once the io thread takes no more
  /// work (the turn then goes to CAF's scheduler).
  class host {
  public:
    virtual ~host() = default;
    virtual bool post(io_turn& t) = 0;
  };

  io_unit(caf::actor_system& sys, host& h, bool enabled,
          std::atomic<uint64_t>& turns)
    : caf::execution_unit(&sys), host_(h), enabled_(enabled), turns_(turns) {
  }

  void exec_later(caf::resumable* job) override;

  /// The context for sends from the io thread; null when nothing runs here.
  caf::execution_unit* context() { return enabled_ ? this : nullptr; }

private:
  friend class io_turn;
  void resume(caf::resumable* job);
  void post_turn(caf::resumable* job);

  host& host_;
  bool enabled_;
  std::atomic<uint64_t>& turns_;
};

/// A send from the io thread: a marked recipient runs there.
template <class Dest, class... Ts>
void tell(io_unit& unit, const Dest& dest, Ts&&... xs) {
  using token = caf::detail::type_list<caf::detail::strip_and_convert_t<Ts>...>;
  static_assert(caf::response_type_unbox<caf::signatures_of_t<Dest>, token>::valid,
                "receiver does not accept given message");
  if (dest)
    dest->eq_impl(caf::make_message_id(), nullptr, unit.context(),
                  std::forward<Ts>(xs)...);
}

/// Calls `h` with the elements of `m` when `m` matches one signature of
/// `Sig` (a `reacts_to<...>`); false when it does not match. A handler that
/// lacks an overload for a signature does not compile.
template <class Sig>
struct inline_dispatch;

template <class... Is, class... Os>
struct inline_dispatch<caf::typed_mpi<caf::detail::type_list<Is...>,
                                      caf::output_tuple<Os...>>> {
  static_assert(std::is_same<caf::output_tuple<Os...>, caf::output_tuple<void>>::value,
                "an inline actor answers nothing: its protocol may only react");

  template <class Handler>
  static bool apply(const caf::type_erased_tuple& m, Handler& h) {
    static_assert(std::is_invocable<Handler&, const Is&...>::value,
                  "the handler does not serve every message of its protocol");
    if (!m.match_elements<Is...>())
      return false;
    call(m, h, std::index_sequence_for<Is...>{});
    return true;
  }

private:
  template <class Handler, size_t... I>
  static void call(const caf::type_erased_tuple& m, Handler& h,
                   std::index_sequence<I...>) {
    h(m.get_as<Is>(I)...);
  }
};

template <class Handler, class... Sigs>
void dispatch_inline(const caf::type_erased_tuple& m, Handler& h,
                     caf::detail::type_list<Sigs...>) {
  // The first signature that matches takes the message; anything else (a
  // link's exit or down message) has no meaning to an inline actor.
  (inline_dispatch<Sigs>::apply(m, h) || ...);
}

/// An actor handled where it is sent to: the `Handle`'s protocol is served by
/// `Handler`'s call operators, which run in the sender's call, on the
/// sender's thread, so a socket's actor costs a function call instead of a
/// scheduled turn and weighs a few hundred bytes instead of a scheduled
/// actor's kilobyte. It has an address and can be monitored like any actor.
template <class Handle, class Handler>
class inline_actor : public caf::monitorable_actor {
public:
  inline_actor(caf::actor_config& cfg, Handler h, const char* name)
    : caf::monitorable_actor(cfg), handler_(std::move(h)), name_(name) {
  }

  const char* name() const override { return name_; }

  void enqueue(caf::mailbox_element_ptr ptr, caf::execution_unit*) override {
    dispatch_inline(ptr->content(), handler_, typename Handle::signatures{});
  }

  void on_destroy() override {
    if (!getf(is_cleaned_up_flag))
      cleanup(caf::exit_reason::normal, nullptr);
    caf::monitorable_actor::on_destroy();
  }

private:
  Handler handler_;
  const char* name_;
};

/// Spawns an inline_actor that serves `Handle`'s protocol with `h`.
template <class Handle, class Handler>
Handle make_inline_actor(caf::actor_system& sys, Handler h, const char* name) {
  caf::actor_config cfg;
  auto ptr = caf::make_actor<inline_actor<Handle, Handler>, caf::strong_actor_ptr>(
    sys.next_actor_id(), sys.node(), &sys, cfg, std::move(h), name);
  return caf::actor_cast<Handle>(std::move(ptr));
}

} // namespace kullsync::detail
