// Measuring one step with LibTorch's legacy profiler (see step_measure.h).
#include "trainer/step_measure.h"

#include <torch/csrc/autograd/profiler_legacy.h>

#include <algorithm>
#include <cstring>
#include <utility>
#include <vector>

namespace reel::trainer {

StepMeasurement measure_step(const std::function<void()>& step) {
  namespace prof = torch::autograd::profiler;
  prof::enableProfilerLegacy(torch::profiler::impl::ProfilerConfig(torch::profiler::impl::ProfilerState::CPU,
                                                                   /*report_input_shapes=*/true,
                                                                   /*profile_memory=*/true, /*with_stack=*/false,
                                                                   /*with_flops=*/true));
  try {
    step();
  } catch (...) {
    prof::disableProfilerLegacy();
    throw;
  }
  const prof::thread_event_lists lists = prof::disableProfilerLegacy();
  StepMeasurement m;
  std::vector<std::pair<double, int64_t>> memory;  // (time, bytes), all threads
  for (const auto& list : lists) {
    for (const auto& e : list) {
      if (e.kind() == prof::EventKind::MemoryAlloc) {
        memory.emplace_back(e.cpuUs(), e.cpuMemoryUsage());
        continue;
      }
      if (e.kind() != prof::EventKind::PushRange) continue;
      const char* name = e.name();
      for (const char* op : {"aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm"}) {
        if (std::strcmp(name, op) != 0) continue;
        auto& event = const_cast<prof::LegacyEvent&>(e);
        m.matmul_flops += static_cast<double>(event.flops());
        ++m.matmul_ops;
      }
    }
  }
  std::stable_sort(memory.begin(), memory.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  int64_t now = 0;
  for (const auto& [t, bytes] : memory) {
    now += bytes;
    m.peak_bytes = std::max(m.peak_bytes, now);
  }
  m.end_bytes = now;
  return m;
}

}  // namespace reel::trainer
