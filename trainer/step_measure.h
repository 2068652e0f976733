// What one training step does, measured rather than computed: the FLOPs of the matrix products
// it ran and the peak of the tensor memory it allocated. `reel bench step --measure` reports them
// and tests hold the planner (trainer/plan.h) against them.
#pragma once

#include <cstdint>
#include <functional>

namespace reel::trainer {

struct StepMeasurement {
  double matmul_flops = 0;  // 2 x multiply-adds of every mm / addmm / bmm / baddbmm run, forward
                            // and backward, as LibTorch's profiler counts them from the shapes
  int64_t matmul_ops = 0;   // how many such products ran
  int64_t peak_bytes = 0;   // the highest total of CPU tensor memory allocated and not yet freed
                            // since `step` began (what the step adds to what existed before:
                            // activations, gradients first allocated, temporaries)
  int64_t end_bytes = 0;    // what it still holds at the end (frees of tensors older than the step
                            // are not seen, so a tensor the step replaces counts here)
};

// Runs `step` once under LibTorch's legacy profiler (shapes, memory and FLOPs recorded), on the
// calling thread: work on other threads is not seen, so measure with trainer.batch_threads=1.
StepMeasurement measure_step(const std::function<void()>& step);

}  // namespace reel::trainer
