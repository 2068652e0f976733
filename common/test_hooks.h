// Fault injection for the end-to-end tests of crash recovery. Inert unless the environment asks.
//
//   REEL_TEST_KILL_AT=step:N   world rank REEL_TEST_KILL_RANK (default 0) sends itself SIGKILL
//                              right after optimizer step N
//   REEL_TEST_KILL_AT=write:N  ... halfway through writing the tensors of step N's checkpoint
//   REEL_TEST_KILL_ONCE=FILE   fire only if FILE does not exist yet (it is created first), so a
//                              restarted run passes the same point unharmed
#pragma once

#include <cstdint>

namespace reel {

// Kills this process with SIGKILL when the environment names this point (`where`, `step`) and
// rank; returns otherwise.
void test_kill_point(const char* where, int64_t step);

}  // namespace reel
