// Whether each Redis instance still answers: a PUBLISH on the probe's own
// channel each interval, seen back on the subscriber link (probe_watch.hpp
// judges when it is late), and the mastership read again with it.
#include "redis_link.hpp"

#include <caf/typed_event_based_actor.hpp>

#include "redis_codec.hpp"
#include "redis_connection.hpp"

namespace kullsync::broker {

namespace {

/// The link the probe waits on read nothing for the patience: both go.
void cut(broker_ptr self, shard_link& s, int64_t now, link_reads reads) {
  auto& st = self->state;
  ++st.shared->probe_timeouts;
  bool answered = s.probe.answered();
  st.log->warn("redis {}: the subscriber did not see its probe for {} ms, and the {} link "
               "last read {} ms ago: reconnecting both links",
               s.name(), now - s.probe.sent_ms(), answered ? "subscriber" : "command",
               now - (answered ? reads.sub_ms : reads.cmd_ms));
  s.probe.reset();
  drop(self, s.sub, "probe timed out");
  drop(self, s.cmd, "probe timed out");
}

/// Redis changes a running master's replication id without closing any
/// link (the first replica to attach does it): a node that read it only at
/// connect would keep the old one, and nodes that connected since the new
/// one, each numbering in "its" mastership, would start a new epoch at every
/// publish of the other's. Read again with every probe, all nodes agree
/// within an interval.
void recheck_mastership(broker_ptr self, shard_link& s) {
  auto gen = s.cmd_gen;
  // Redis 7 (which the scripts need) takes a list of sections.
  command(self, s, {"INFO", "server", "replication"}, [self, index = s.index, gen](redis_value v) {
    auto& s = self->state.shards[index];
    if (s.cmd_gen != gen || v.kind != redis_value::string)
      return; // another link since, or no answer: the probe judges the link
    if (is_replica(v.str))
      // Demoted under the link: a node that only reads would otherwise stay
      // ready on it until one of its writes is refused.
      return leave_replica(self, s, "it says it is a replica now (INFO replication)");
    auto run = mastership_of(v.str);
    if (!run || *run == s.run)
      return;
    self->state.log->warn("redis {}: its mastership changed ({} -> {}): streams start a new "
                          "epoch as they are next written",
                          s.name(), s.run, *run);
    s.run = *run;
  });
}

} // namespace

void probe(broker_ptr self, shard_link& s, int64_t now) {
  auto& st = self->state;
  link_reads reads{s.cmd ? s.cmd->last_read_ms() : 0, s.sub ? s.sub->last_read_ms() : 0};
  switch (judge(s.probe, now, st.last_tick_ms, reads, st.cfg.probe_interval.count())) {
    case probe_verdict::waiting:
    case probe_verdict::behind: // told when the probe comes back
      return;
    case probe_verdict::stopped:
      cut(self, s, now, reads);
      return;
    case probe_verdict::send:
      break;
  }
  s.probe.send(now);
  command(self, s, {"PUBLISH", st.probe_channel, "probe"},
          [self, index = s.index, sent = now](redis_value v) {
            auto& shard = self->state.shards[index];
            if (shard.probe.sent_ms() != sent || !shard.probe.out())
              return; // an older probe's answer
            if (!v.is_error())
              shard.probe.answer(steady_ms());
            else if (v.kind != redis_value::error)
              shard.probe.reset(); // its link went: a new probe once the links are ready
            else // left out: the links are cut when the command link falls silent
              self->state.log->warn("redis {}: the probe's PUBLISH was refused: {}",
                                    shard.name(), v.str);
          });
  recheck_mastership(self, s);
}

void probe_back(broker_ptr self, shard_link& s) {
  auto& st = self->state;
  auto now = steady_ms();
  auto late = now - s.probe.sent_ms();
  if (s.probe.out() && late >= probe_patience(st.cfg.probe_interval.count())) {
    ++st.shared->probes_late;
    st.log->info("redis {}: the probe came back after {} ms (the links were behind, not "
                 "stopped)", s.name(), late);
  }
  s.probe.back(now);
  s.last_heard_ms = now;
}

} // namespace kullsync::broker
