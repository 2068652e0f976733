// The world communicator of a multi-rank test binary (tests/parallel), set up by its main():
// MPI, a watchdog and the world group live for the whole run, every rank runs every test.
#pragma once

#include "parallel/communicator.h"
#include "parallel/watchdog.h"

namespace reel::testing {

parallel::Communicator& world();
parallel::Watchdog& watchdog();  // the one watching world() (60 s)

}  // namespace reel::testing
