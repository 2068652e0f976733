// The options `reel eval` and `reel eval-run` share: which prompts, the sampler, the validation
// data and whether videos are written.
#pragma once

#include "trainer/cli/args.h"
#include "trainer/eval.h"

namespace reel::cli {

void add_eval_options(Command& c);
trainer::EvalOptions eval_options(const Args& args);  // UserError for a bad value

}  // namespace reel::cli
