// Compiled into kullsync-server only when it links jemalloc
// (apps/CMakeLists.txt). jemalloc reads this at its start; MALLOC_CONF in
// the environment still overrides it.
//
// Freed pages go back to the system a second after they were freed (at the
// allocator's next call; there is no background thread) rather than ten:
// what a connect or a burst of messages allocated for a moment does not
// stay in an idle node's memory (docs/BENCHMARKS.md, "The allocator").
extern "C" {
extern const char* malloc_conf;
const char* malloc_conf = "dirty_decay_ms:1000";
}
