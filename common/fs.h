// Files that are never partial under their final name: write to "<path>.tmp.<pid>", flush,
// fsync, then rename over the final name (atomic on POSIX). A crash leaves at most a
// temporary file behind, never a truncated final one.
#pragma once

#include <functional>
#include <string>

namespace reel {

// Writes `content` to `path` atomically. Throws UserError naming the path on failure.
void write_file_atomic(const std::string& path, const std::string& content);

// Calls write(tmp_path) to produce the file under a temporary name in the same directory,
// fsyncs it, then renames it to `path`. If write throws, the temporary file is removed and the
// exception propagates; nothing appears under `path`.
void write_atomically(const std::string& path, const std::function<void(const std::string& tmp_path)>& write);

// The last step of write_atomically, for a temporary file written otherwise (e.g. by many ranks):
// fsyncs `tmp`, renames it to `path` and fsyncs the directory. On failure `tmp` is removed and a
// UserError names both paths.
void publish_file(const std::string& tmp, const std::string& path);

// Creates a directory and its parents; throws UserError naming it on failure.
void make_dirs(const std::string& dir);

std::string read_file(const std::string& path);  // throws UserError if unreadable

}  // namespace reel
