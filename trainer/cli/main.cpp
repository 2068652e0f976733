// reel: the one command-line entry point. Dispatches to the subcommands; turns input errors
// into one clear message and exit code 2.
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include "common/error.h"
#include "common/runtime.h"
#include "trainer/cli/commands.h"

namespace {

const char* kHelp =
    "reel: trains Movie Gen-class media models from YAML recipes and samples and scores them.\n"
    "\n"
    "usage: reel <command> [arguments] [--help]\n"
    "\n"
    "commands:\n"
    "  train RECIPE [key=value ...] [--resume]   train a model (t2v, or the TAE: model.name tae) from a recipe\n"
    "  recipe RECIPE [key=value ...] [--get KEY] check a recipe and print it resolved (or one key)\n"
    "  sample --ckpt PATH (--prompt TEXT | --prompts FILE) --out DIR\n"
    "                                            generate MP4s, a contact sheet and samples.jsonl\n"
    "  eval --ckpt PATH --out DIR                sample the held-out prompt set and score it (eval.json)\n"
    "  eval-run RUN_DIR [--watch]                every checkpoint of a run evaluated into RUN_DIR/eval.jsonl\n"
    "  report RUN_DIR                            one HTML page: loss curves, metrics per checkpoint, samples\n"
    "  eval tae --ckpt PATH --data DIR --out DIR2\n"
    "                                            a TAE's PSNR and SSIM on held-out clips, side-by-side MP4s\n"
    "  eval probe --ckpt PATH                    where the model puts the object per frame at the start of sampling\n"
    "  data synth --out DIR                      write the synthetic video-text dataset (HDF5 shards)\n"
    "  data ingest SRC... --out DIR              real video, image and audio files into bucketed shards\n"
    "  data encode --tae CKPT --in DIR --out DIR2  a pixel dataset into TAE latent shards (under mpirun)\n"
    "  bench step RECIPE | bench matmul         measure training-step FLOP/s against the matmul rate\n"
    "  bench comm                                collective times and bandwidths (under mpirun)\n"
    "  plan RECIPE [--gpus N] [--gpu h100|h200] [--json]\n"
    "                                            parameters, FLOPs, memory per GPU, communication and step time\n"
    "  bench data RECIPE                         the data loader's samples/s and MB/s\n"
    "  ckpt inspect FILE                         list a checkpoint's step, recipe and tensors\n"
    "  ckpt compare A B                          largest relative difference of their tensors\n"
    "  ckpt verify FILE...                       check every tensor's checksum\n"
    "  ckpt average A B ... -o OUT               average the model weights of checkpoints\n"
    "\n"
    "options:\n"
    "  --help       this text; `reel <command> --help` lists a command's options\n"
    "  --version    print the version and commit\n";

}  // namespace

int main(int argc, char** argv) {
  reel::configure_process(argv);
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0 ||
      std::strcmp(argv[1], "help") == 0) {
    std::fputs(kHelp, argc < 2 ? stderr : stdout);
    return argc < 2 ? reel::kUserErrorExit : 0;
  }
  std::string command = argv[1];
  if (command == "--version") {
    std::printf("reel %s (%s)\n", reel::version().c_str(), reel::git_commit().c_str());
    return 0;
  }
  try {
    if (command == "train") return reel::cli::cmd_train(argc, argv, 2);
    if (command == "sample") return reel::cli::cmd_sample(argc, argv, 2);
    if (command == "eval") return reel::cli::cmd_eval(argc, argv, 2);
    if (command == "data") return reel::cli::cmd_data(argc, argv, 2);
    if (command == "bench") return reel::cli::cmd_bench(argc, argv, 2);
    if (command == "plan") return reel::cli::cmd_plan(argc, argv, 2);
    if (command == "eval-run") return reel::cli::cmd_eval_run(argc, argv, 2);
    if (command == "report") return reel::cli::cmd_report(argc, argv, 2);
    if (command == "ckpt") return reel::cli::cmd_ckpt(argc, argv, 2);
    if (command == "recipe") return reel::cli::cmd_recipe(argc, argv, 2);
    std::fprintf(stderr, "reel: unknown command '%s'\n\n%s", command.c_str(), kHelp);
    return reel::kUserErrorExit;
  } catch (const reel::UserError& e) {
    std::fprintf(stderr, "reel %s: error: %s\n", command.c_str(), e.what());
    return reel::kUserErrorExit;
  } catch (const c10::Error& e) {
    std::fprintf(stderr, "reel %s: internal error (LibTorch): %s\n", command.c_str(), e.what_without_backtrace());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "reel %s: internal error: %s\n", command.c_str(), e.what());
    return 1;
  }
}
