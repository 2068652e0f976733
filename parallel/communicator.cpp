// Shared argument checks of the communicator backends (see communicator.h).
#include "parallel/communicator.h"

#include <atomic>

#include "common/error.h"

namespace reel::parallel {

namespace {
std::atomic<int64_t> blocked_wait_ns{0};
}  // namespace

double blocked_wait_seconds() { return static_cast<double>(blocked_wait_ns.load()) * 1e-9; }

void detail::add_blocked_wait(double seconds) { blocked_wait_ns += static_cast<int64_t>(seconds * 1e9); }

const char* reduce_op_name(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum: return "sum";
    case ReduceOp::kAvg: return "avg";
    case ReduceOp::kMax: return "max";
    case ReduceOp::kMin: return "min";
  }
  return "?";
}

void Communicator::check_tensor(const char* op, const char* what, const torch::Tensor& t) const {
  REEL_CHECK(t.defined(), op, " on group '", name_, "' (rank ", rank_, " of ", size_, "): ", what,
             " is an undefined tensor");
  REEL_CHECK(t.is_contiguous(), op, " on group '", name_, "' (rank ", rank_, " of ", size_, "): ", what,
             " of shape ", t.sizes(), " is not contiguous; call .contiguous() first");
}

void Communicator::check_numel(const char* op, const char* what, const torch::Tensor& t, int64_t expected) const {
  check_tensor(op, what, t);
  REEL_CHECK(t.numel() == expected, op, " on group '", name_, "' (rank ", rank_, " of ", size_, "): ", what,
             " has ", t.numel(), " elements (shape ", t.sizes(), "), expected ", expected);
}

void Communicator::check_peer(const char* op, int peer) const {
  REEL_CHECK(peer >= 0 && peer < size_, op, " on group '", name_, "' (rank ", rank_, " of ", size_,
             "): peer rank ", peer, " is outside [0, ", size_, ")");
}

}  // namespace reel::parallel
