// Prompt files (trainer/prompt_file.h): plain and JSON lines, seeds, truth names, errors by line,
// and the per-rank share under mpirun.
#include "trainer/prompt_file.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "tests/test_util.h"

namespace reel::trainer {
namespace {

using reel::testing::expect_user_error;

std::string write(const std::string& name, const std::string& text) {
  const std::string path = (std::filesystem::temp_directory_path() / name).string();
  std::ofstream(path) << text;
  return path;
}

TEST(PromptFile, PlainAndJsonLinesWithSeedsAndTruth) {
  const std::string path = write("reel_prompts_ok.jsonl",
                                 "a plain prompt\n\n{\"prompt\": \"a red circle moving left\", \"seed\": 42, "
                                 "\"color\": \"red\", \"shape\": \"circle\", \"motion\": \"left\"}\n"
                                 "{\"prompt\": \"only a colour\", \"color\": \"blue\"}\n");
  const std::vector<PromptSpec> p = read_prompt_file(path, 100);
  ASSERT_EQ(p.size(), 3u);
  EXPECT_EQ(p[0].prompt, "a plain prompt");
  EXPECT_EQ(p[0].seed, 100u);  // base seed + index
  EXPECT_EQ(p[0].color, -1);
  EXPECT_EQ(p[1].seed, 42u);
  EXPECT_GE(p[1].color, 0);
  EXPECT_GE(p[1].shape, 0);
  EXPECT_GE(p[1].motion, 0);
  EXPECT_EQ(p[2].seed, 102u);
  EXPECT_GE(p[2].color, 0);
  EXPECT_EQ(p[2].motion, -1);
  EXPECT_NE(p[1].color, p[2].color);
}

TEST(PromptFile, ErrorsNameTheLine) {
  expect_user_error([] { read_prompt_file(write("reel_p1.jsonl", "ok\n{\"prompt\": 3}\n"), 0); },
                    "reel_p1.jsonl:2: needs a string \"prompt\"");
  expect_user_error([] { read_prompt_file(write("reel_p2.jsonl", "{\"prompt\": \"x\", \"motion\": \"sideways\"}\n"), 0); },
                    "reel_p2.jsonl:1: \"motion\" = sideways is not one of left, right, up, down, still");
  expect_user_error([] { read_prompt_file(write("reel_p3.jsonl", "{\"prompt\": \"x\", \"seed\": -1}\n"), 0); },
                    "reel_p3.jsonl:1: \"seed\" must be a non-negative integer");
  expect_user_error([] { read_prompt_file(write("reel_p4.jsonl", "{not json\n"), 0); }, "reel_p4.jsonl:1: not valid JSON");
  expect_user_error([] { read_prompt_file(write("reel_p5.jsonl", "\n \n"), 0); }, "holds no prompts");
  expect_user_error([] { read_prompt_file("/nonexistent/prompts.txt", 0); }, "cannot read prompt file");
}

TEST(PromptFile, RankSharesCoverEveryPromptOnce) {
  EXPECT_EQ(rank_share(5, 0, 2), (std::vector<size_t>{0, 2, 4}));
  EXPECT_EQ(rank_share(5, 1, 2), (std::vector<size_t>{1, 3}));
  EXPECT_TRUE(rank_share(2, 3, 4).empty());
  std::vector<int> seen(10, 0);
  for (int r = 0; r < 3; ++r)
    for (size_t i : rank_share(10, r, 3)) ++seen[i];
  EXPECT_EQ(seen, std::vector<int>(10, 1));
}

}  // namespace
}  // namespace reel::trainer
