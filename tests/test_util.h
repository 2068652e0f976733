// Helpers shared by every test binary: checking that input errors are UserErrors with the
// right words in them.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "common/error.h"

namespace reel::testing {

inline bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// The message of the UserError `fn` throws; fails the test (and returns "") if it throws none.
inline std::string user_error_message(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const reel::UserError& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected a reel::UserError";
  return "";
}

// Expects `fn` to throw a UserError whose message contains `needle`.
inline void expect_user_error(const std::function<void()>& fn, const std::string& needle) {
  std::string message = user_error_message(fn);
  EXPECT_TRUE(contains(message, needle)) << "expected an error mentioning '" << needle << "', got: " << message;
}

}  // namespace reel::testing
