// The `reel` subcommands. Each takes the full argv and the index of its first own argument,
// returns the process exit code, and throws UserError for bad input (main turns it into exit 2).
#pragma once

namespace reel::cli {

int cmd_train(int argc, char** argv, int first);
int cmd_sample(int argc, char** argv, int first);
int cmd_eval(int argc, char** argv, int first);
int cmd_data(int argc, char** argv, int first);
int cmd_bench(int argc, char** argv, int first);
int cmd_plan(int argc, char** argv, int first);
int cmd_eval_run(int argc, char** argv, int first);
int cmd_report(int argc, char** argv, int first);
int cmd_ckpt(int argc, char** argv, int first);
int cmd_recipe(int argc, char** argv, int first);

}  // namespace reel::cli
