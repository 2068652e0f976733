// Atomic writes leave either the whole new file or nothing under the final name.
#include <gtest/gtest.h>

#include <filesystem>

#include "common/error.h"
#include "common/fs.h"

namespace fs = std::filesystem;

TEST(AtomicWrite, WritesWholeFileAndLeavesNoTemporary) {
  fs::path dir = fs::temp_directory_path() / "reel_fs_test_whole";
  fs::remove_all(dir);
  std::string path = (dir / "sub" / "a.txt").string();
  reel::write_file_atomic(path, "hello");
  EXPECT_EQ(reel::read_file(path), "hello");
  int files = 0;
  for (auto& e : fs::directory_iterator(dir / "sub")) { (void)e; ++files; }
  EXPECT_EQ(files, 1);
}

TEST(AtomicWrite, FailedWriterLeavesNothingUnderFinalName) {
  fs::path dir = fs::temp_directory_path() / "reel_fs_test_fail";
  fs::remove_all(dir);
  std::string path = (dir / "b.txt").string();
  EXPECT_THROW(reel::write_atomically(path, [](const std::string& tmp) {
                 reel::write_file_atomic(tmp + ".x", "partial");  // some work, then a failure
                 throw reel::UserError("boom");
               }),
               reel::UserError);
  EXPECT_FALSE(fs::exists(path));
}

TEST(ReadFile, MissingFileNamesThePath) {
  try {
    reel::read_file("/nonexistent/reel/file.yaml");
    FAIL() << "expected UserError";
  } catch (const reel::UserError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/reel/file.yaml"), std::string::npos);
  }
}
