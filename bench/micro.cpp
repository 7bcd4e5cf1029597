// Micro-benchmarks: the codec per message type, and the client engine in
// process (memory transport -> connection -> coordinator -> subscriber).
#include <benchmark/benchmark.h>

#include <atomic>
#include <chrono>
#include <thread>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/exit_reason.hpp>
#include <caf/send.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "kullsync/client/caf_types.hpp"
#include "kullsync/client/engine.hpp"
#include "kullsync/messages/codec.hpp"
#include "kullsync/transports/memory_network.hpp"

using namespace kullsync;

namespace {

const char* frames[] = {
  R"({"type":"SHOOT_PROGRESS","data":{"shootId":"wedding-0412","status":"processing","processedCount":130,"totalCount":250,"currentImage":"IMG_0130.CR3","eta":72.5,"provider":"openai"},"timestamp":1732580000123,"deviceId":"server","userId":"u1"})",
  R"({"type":"CREDIT_UPDATE","data":{"userId":"u1","newBalance":950,"change":-50,"reason":"shoot wedding-0412"},"timestamp":1732580000123,"deviceId":"server","userId":"u1"})",
  R"({"type":"PROMPT_CHANGE","data":{"promptId":"p-17","action":"voted"},"timestamp":1732580000123,"deviceId":"server","userId":"u1"})",
  R"({"type":"DEVICE_CONNECTED","data":{"deviceId":"ipad-2","timestamp":1732580000000},"timestamp":1732580000001,"deviceId":"server","userId":"u1"})",
  R"({"type":"ADMIN_SESSION_UPDATE","data":{"sessionId":"s-4","userId":"u7","userEmail":"u7@example.com","action":"new_message","messageCount":17},"timestamp":1,"deviceId":"server"})",
  R"({"type":"PROVIDER_HEALTH","data":{"providers":[{"provider":"openai","healthScore":98,"status":"healthy","activeRequests":2,"requestsToday":100,"costToday":1.5,"avgLatency":420.5,"successRate":0.99,"errorRate":0.01,"rateLimitHits":0,"rateLimitProximity":0.1,"recentErrors":0,"lastError":null,"requestHistory":[{"timestamp":1,"value":2},{"timestamp":2,"value":3}],"costHistory":[],"errorHistory":[],"uptimePercentage":100}],"timestamp":1},"timestamp":2,"deviceId":"server"})",
  R"({"type":"PONG","timestamp":1732580000123})",
};
const char* names[] = {"shoot_progress", "credit_update", "prompt_change", "device_connected",
                       "admin_session", "provider_health", "pong"};

void decode(benchmark::State& state) {
  std::string_view text = frames[state.range(0)];
  for (auto _ : state)
    benchmark::DoNotOptimize(msg::decode_server(text));
  state.SetLabel(names[state.range(0)]);
  state.SetBytesProcessed(state.iterations() * text.size());
}
BENCHMARK(decode)->DenseRange(0, 6);

void encode(benchmark::State& state) {
  auto m = *msg::decode_server(frames[state.range(0)]);
  for (auto _ : state)
    benchmark::DoNotOptimize(msg::encode(m));
  state.SetLabel(names[state.range(0)]);
}
BENCHMARK(encode)->DenseRange(0, 6);

void decode_client_update(benchmark::State& state) {
  std::string text = R"({"type":"UPDATE_PROGRESS","payload":{"shootId":"s1","status":"processing","processedCount":1,"totalCount":2,"provider":"p","sentAt":123456789}})";
  msg::decode_limits lim;
  lim.keep_raw_payload = true;
  for (auto _ : state)
    benchmark::DoNotOptimize(msg::decode_client(text, lim));
}
BENCHMARK(decode_client_update);

using blast_atom = caf::atom_constant<caf::atom("blast")>;

/// A server end that sends `n` SHOOT_PROGRESS frames as fast as it can.
using blaster_actor = caf::typed_actor<
  caf::reacts_to<accept_atom, accepted_link_actor, std::string, header_list, std::string>,
  caf::reacts_to<opened_atom, uint64_t, std::string>,
  caf::reacts_to<frame_atom, uint64_t, frame_batch>,
  caf::reacts_to<closed_atom, uint64_t, uint16_t, std::string>,
  caf::reacts_to<blast_atom, int64_t>>;

/// Messages per second through the whole engine on one scheduler thread:
/// frames from the memory network, decoded by the connection, applied by the
/// coordinator, published to a subscriber that counts shoot updates.
/// Arguments: CAF's scheduler.max-throughput (0: CAF's default), and the
/// frames in flight (0: all 100,000 of an iteration at once; else the peer
/// sends 1,000 more each time the subscriber has seen 1,000, as a real
/// socket's buffers bound what is in flight).
void engine_in_process(benchmark::State& state) {
  caf::actor_system_config cfg;
  add_client_types(cfg);
  cfg.set("scheduler.max-threads", size_t{1});
  // 0: CAF's default, an actor runs until its mailbox is empty, so a burst
  // crosses the engine one stage at a time (all of it decoded, then all of it
  // applied, ...). A limit lets each batch go through every stage while its
  // bytes are still in cache.
  if (state.range(0) > 0)
    cfg.set("scheduler.max-throughput", static_cast<size_t>(state.range(0)));
  caf::actor_system sys{cfg};
  auto net = spawn_memory_network(sys, 1);
  std::atomic<int64_t> seen{0};
  std::atomic<int64_t> unsent{0}; // frames of this iteration not yet asked for
  const int64_t window = state.range(1);
  constexpr int64_t refill = 1000;
  auto peer = sys.spawn([net](blaster_actor::pointer self) -> blaster_actor::behavior_type {
    auto end = std::make_shared<accepted_link_actor>();
    self->send(net, listen_atom::value, std::string{"ws://bench/ws"},
               caf::actor_cast<acceptor_actor>(self));
    return {
      [=](accept_atom, accepted_link_actor t, std::string&, header_list&, const std::string&) {
        *end = t;
        self->send(t, attach_atom::value, caf::actor_cast<transport_listener_actor>(self),
                   uint64_t{1}, std::string{});
      },
      [=](opened_atom, uint64_t, std::string&) {},
      [=](frame_atom, uint64_t, frame_batch&) {},
      [=](closed_atom, uint64_t, uint16_t, std::string&) {},
      [=](blast_atom, int64_t n) {
        // Bursts of up to 1,000 frames. With a throughput limit the engine
        // works on one burst while the next is produced; without one this
        // actor keeps the worker until all bursts are out.
        auto f = make_shared_frame(frames[0]);
        auto burst = std::min<int64_t>(n, 1000);
        for (int64_t i = 0; i < burst; ++i)
          self->send(*end, send_atom::value, f);
        if (n > burst)
          self->send(self, blast_atom::value, n - burst);
      },
    };
  });
  client_config cc;
  cc.connection.url = "ws://bench/ws";
  cc.connection.user_id = "u1";
  cc.connection.device_id = "d";
  auto engine = spawn_client(sys, cc, spawn_memory_transport(sys, net));
  auto counter = make_message_callback(sys, [&](const msg::server_message&) {
    if (++seen % refill == 0 && window > 0 && unsent.fetch_sub(refill) > 0)
      caf::anon_send(peer, blast_atom::value, refill);
  });
  engine.subscribe(msg::server_type::shoot_progress, counter);
  engine.connect();
  std::this_thread::sleep_for(std::chrono::milliseconds{100});
  const int64_t batch = 100000;
  int64_t total = 0;
  for (auto _ : state) {
    auto first = window > 0 ? std::min(window, batch) : batch;
    unsent = batch - first;
    caf::anon_send(peer, blast_atom::value, first);
    total += batch;
    while (seen.load() < total)
      std::this_thread::yield();
  }
  state.SetItemsProcessed(total);
  engine.stop();
  caf::anon_send_exit(peer, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(net, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(counter, caf::exit_reason::user_shutdown);
}
BENCHMARK(engine_in_process)
  ->ArgNames({"max_throughput", "in_flight"})
  ->Args({0, 0})
  ->Args({200, 0})
  ->Args({0, 2000})
  ->Unit(benchmark::kMillisecond)
  ->UseRealTime()
  ->Iterations(10);

} // namespace

BENCHMARK_MAIN();
