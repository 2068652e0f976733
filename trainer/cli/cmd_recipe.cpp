// `reel recipe RECIPE [key.path=value ...] [--get KEY]`: the resolved recipe, checked as
// `reel train` checks it, without training; for scripts (launch/reel-run reads run.dir with it).
#include <yaml-cpp/yaml.h>

#include <cstdio>
#include <sstream>

#include "common/error.h"
#include "trainer/cli/args.h"
#include "trainer/cli/commands.h"
#include "trainer/recipe.h"

namespace reel::cli {

int cmd_recipe(int argc, char** argv, int first) {
  Command c("reel recipe RECIPE [key.path=value ...] [--get KEY]",
            "Checks a recipe with its overrides as `reel train` does (exit 2 naming the file, line and key on\n"
            "an error) and prints the resolved recipe, or with --get the value of one key (e.g. run.dir).");
  c.positional("RECIPE", "the recipe file")
      .positional("key.path=value", "overrides")
      .option("get", "KEY", "print only this key's value (a dotted path: run.dir, trainer.steps)")
      .min_positionals(1)
      .max_positionals(-1);
  auto args = c.parse(argc, argv, first);
  if (!args) return 0;
  std::vector<std::string> overrides(args->positionals().begin() + 1, args->positionals().end());
  const trainer::Recipe recipe = trainer::load_recipe(args->positionals()[0], overrides);
  const std::string yaml = trainer::to_yaml(recipe);
  const std::string key = args->get("get", "");
  if (key.empty()) {
    std::fputs(yaml.c_str(), stdout);
    return 0;
  }
  YAML::Node node = YAML::Load(yaml);
  std::stringstream path(key);
  for (std::string part; std::getline(path, part, '.');) {
    if (!node.IsMap() || !node[part]) fail("recipe ", recipe.source, " has no key '", key, "'");
    node = node[part];
  }
  if (node.IsScalar()) {
    std::printf("%s\n", node.as<std::string>().c_str());
  } else {
    YAML::Emitter out;
    out << node;
    std::printf("%s\n", out.c_str());
  }
  return 0;
}

}  // namespace reel::cli
