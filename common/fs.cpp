// Atomic file writes and small file helpers.
#include "common/fs.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/error.h"

namespace reel {
namespace fs = std::filesystem;

namespace {
void fsync_path(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) fail("cannot open '", path, "' to sync it: ", std::strerror(errno));
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) fail("cannot fsync '", path, "': ", std::strerror(errno));
}
}  // namespace

void write_atomically(const std::string& path, const std::function<void(const std::string&)>& write) {
  fs::path final_path(path);
  if (final_path.has_parent_path()) make_dirs(final_path.parent_path().string());
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  try {
    write(tmp);
  } catch (...) {
    std::error_code ec;
    fs::remove(tmp, ec);
    throw;
  }
  publish_file(tmp, path);
}

void publish_file(const std::string& tmp, const std::string& path) {
  fs::path final_path(path);
  std::error_code ec;
  try {
    fsync_path(tmp);
  } catch (...) {
    fs::remove(tmp, ec);
    throw;
  }
  fs::rename(tmp, final_path, ec);
  if (ec) {
    const std::string why = ec.message();
    fs::remove(tmp, ec);
    fail("cannot rename '", tmp, "' to '", path, "': ", why);
  }
  std::string dir = final_path.has_parent_path() ? final_path.parent_path().string() : ".";
  fsync_path(dir);
}

void write_file_atomic(const std::string& path, const std::string& content) {
  write_atomically(path, [&](const std::string& tmp) {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) fail("cannot write '", tmp, "': ", std::strerror(errno));
    out << content;
    out.flush();
    if (!out) fail("write to '", tmp, "' failed (disk full?)");
  });
}

void make_dirs(const std::string& dir) {
  if (dir.empty()) return;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) fail("cannot create directory '", dir, "': ", ec.message());
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot read '", path, "': ", std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace reel
