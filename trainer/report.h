// `reel report RUN_DIR`: one self-contained HTML page of a run, for a person to look at: the
// training loss and LR, the validation loss at each fixed t, the evaluation metrics of every
// checkpoint (from `reel eval-run`'s eval.jsonl), and the sampled videos of each evaluated
// checkpoint, playing. Charts are inline SVG and the videos are embedded (base64 data URIs) up to
// a size budget, past which they are linked relative to the page; no script, no external resource.
#pragma once

#include <cstdint>
#include <string>

namespace reel::trainer {

struct ReportOptions {
  std::string run_dir;
  std::string out;                       // "" = RUN_DIR/report.html
  int videos_per_checkpoint = 8;         // the first N samples of each evaluated checkpoint
  int64_t embed_budget_bytes = 64 << 20; // videos embedded until this many bytes, then linked
};

// Writes the page (atomically) and returns its path. UserError when RUN_DIR has neither
// metrics.jsonl nor eval.jsonl.
std::string write_report(const ReportOptions& options);

}  // namespace reel::trainer
