// Preemption signals (see preemption.h).
#include "trainer/preemption.h"

#include <atomic>
#include <csignal>

namespace reel::trainer {
namespace {

std::atomic<int> received{0};
static_assert(std::atomic<int>::is_always_lock_free, "the signal handler needs a lock-free flag");

extern "C" void on_preemption_signal(int signal) { received.store(signal, std::memory_order_relaxed); }

}  // namespace

void install_preemption_handlers() {
  struct sigaction action {};
  action.sa_handler = on_preemption_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;  // blocking reads and waits go on; the loop checks between steps
  sigaction(SIGUSR1, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
}

int preemption_signal() { return received.load(std::memory_order_relaxed); }

void request_preemption(int signal) { received.store(signal, std::memory_order_relaxed); }

}  // namespace reel::trainer
