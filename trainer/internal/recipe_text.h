// Text helpers of the recipe parser: number/bool parsing that rejects partial matches,
// shortest round-trip doubles, "did you mean" suggestions, and how a YAML node is shown in
// messages. Private to trainer/.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace reel::trainer::detail {

// Shortest decimal form that reads back to the same double ("0.001", "1e-08", "7.5").
std::string format_double(double x);

// As format_double, but always reads as a float in YAML ("1.0", not "1").
std::string yaml_double(double x);

std::string join(const std::vector<std::string>& items, const char* sep);

std::string join_path(const std::string& prefix, const std::string& key);

std::string lower(std::string s);

// Edit distance counting a swap of neighbours as one edit (optimal string alignment).
size_t edit_distance(const std::string& a, const std::string& b);

// The candidate closest to `word` when it is close enough to be a likely typo.
std::optional<std::string> closest(const std::string& word, const std::vector<std::string>& candidates);

// "123" / "-4" / "+5" exactly; no fractions, exponents or hex.
std::optional<int64_t> parse_int(const std::string& s);

// A finite decimal number: "1", "-0.5", "1e-3", ".5"; no hex, inf or nan.
std::optional<double> parse_double(const std::string& s);

std::optional<bool> parse_bool(const std::string& s);

bool is_quoted(const YAML::Node& n);

// A node as a message shows it: 'abc', the quoted string '12', the list [1, 2], nothing (null).
std::string show(const YAML::Node& n);

}  // namespace reel::trainer::detail
