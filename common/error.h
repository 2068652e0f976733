// Error handling, the two kinds STYLE.md asks for.
//
//  * UserError: a recoverable error caused by input (a recipe, a dataset, a checkpoint, a CLI
//    argument). Thrown by library code with a message that names the file/line/key/value that
//    is wrong and what to do; the CLI prints it and exits with code 2 (kUserErrorExit).
//  * REEL_CHECK: an internal invariant. On failure it prints file:line, rank, host and the
//    message, then aborts the whole job (MPI_Abort when MPI is up) so no rank hangs.
//
// Library code never calls exit().
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace reel {

constexpr int kUserErrorExit = 2;

class UserError : public std::runtime_error {
 public:
  explicit UserError(const std::string& what) : std::runtime_error(what) {}
};

// Concatenates its arguments with operator<<.
template <typename... Args>
std::string cat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}

template <typename... Args>
[[noreturn]] void fail(const Args&... args) {
  throw UserError(cat(args...));
}

namespace detail {
[[noreturn]] void check_failed(const char* file, int line, const char* cond, const std::string& msg);
}  // namespace detail

}  // namespace reel

// REEL_CHECK(cond, "message parts", value, ...): fatal invariant check, see above.
#define REEL_CHECK(cond, ...)                                                                \
  do {                                                                                       \
    if (!(cond)) ::reel::detail::check_failed(__FILE__, __LINE__, #cond, ::reel::cat(__VA_ARGS__)); \
  } while (0)
