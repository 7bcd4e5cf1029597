#include "caf_bridge.hpp"

#include <caf/local_actor.hpp>
#include <caf/scheduled_actor.hpp>
#include <caf/scheduler/abstract_coordinator.hpp>

#include "kullsync/transports/io_thread.hpp"

namespace kullsync {

namespace {

// A flag bit of abstract_actor that CAF 0.17 leaves free (it uses bits up to
// 0x2000 for actors and reserves 0xFFF00000 for channels). Set by the actor
// itself before anyone knows of it; only read afterwards, which is how CAF
// treats its own constant flags.
constexpr int runs_on_io_flag = 0x00080000;
static_assert((runs_on_io_flag & 0xFFF00000) == 0);
static_assert(runs_on_io_flag > caf::abstract_actor::is_shutting_down_flag);

bool marked(caf::resumable* job) {
  return job->subtype() == caf::resumable::scheduled_actor
         && static_cast<caf::scheduled_actor*>(job)->getf(runs_on_io_flag);
}

// Messages per turn: enough to route a burst in one go, few enough that
// sockets are served between the turns of a busy actor.
constexpr size_t turn_throughput = 256;

} // namespace

void run_on_io_thread(caf::local_actor* self) {
  self->setf(runs_on_io_flag);
}

namespace detail {

io_turn::~io_turn() {
  if (job_ != nullptr)
    caf::scheduler::abstract_coordinator::cleanup_and_release(job_);
}

void io_turn::operator()() {
  unit_->resume(std::exchange(job_, nullptr));
}

void io_unit::exec_later(caf::resumable* job) {
  if (enabled_ && marked(job))
    post_turn(job);
  else
    system().scheduler().enqueue(job);
}

void io_unit::post_turn(caf::resumable* job) {
  io_turn t{this, job};
  if (!host_.post(t))
    system().scheduler().enqueue(t.release());
}

void io_unit::resume(caf::resumable* job) {
  turns_.fetch_add(1, std::memory_order_relaxed);
  switch (job->resume(this, turn_throughput)) {
    case caf::resumable::resume_later:
      post_turn(job);
      break;
    case caf::resumable::shutdown_execution_unit:
      break; // not an actor's result; nothing to release
    default:
      caf::intrusive_ptr_release(job);
  }
}

} // namespace detail

} // namespace kullsync
