// Text helpers of the recipe parser (see trainer/internal/recipe_text.h).
#include "trainer/internal/recipe_text.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <limits>

#include "common/error.h"

namespace reel::trainer::detail {


// Shortest decimal form that reads back to the same double ("0.001", "1e-08", "7.5").
std::string format_double(double x) {
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), x);
  return std::string(buf, res.ptr);
}

// As format_double, but always reads as a float in YAML ("1.0", not "1").
std::string yaml_double(double x) {
  std::string s = format_double(x);
  return s.find_first_of(".eEn") == std::string::npos ? s + ".0" : s;
}

std::string join(const std::vector<std::string>& items, const char* sep) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) out += (i ? sep : "") + items[i];
  return out;
}

std::string join_path(const std::string& prefix, const std::string& key) {
  return prefix.empty() ? key : prefix + "." + key;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Edit distance counting a swap of neighbours as one edit (optimal string alignment).
size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.size()][b.size()];
}

// The candidate closest to `word` when it is close enough to be a likely typo.
std::optional<std::string> closest(const std::string& word, const std::vector<std::string>& candidates) {
  std::optional<std::string> best;
  size_t best_d = std::max<size_t>(1, word.size() / 3) + 1;
  for (const std::string& c : candidates) {
    size_t d = edit_distance(lower(word), lower(c));
    if (d < best_d) best = c, best_d = d;
  }
  return best;
}

// "123" / "-4" / "+5" exactly; no fractions, exponents or hex.
std::optional<int64_t> parse_int(const std::string& s) {
  size_t start = (!s.empty() && (s[0] == '+' || s[0] == '-')) ? 1 : 0;
  if (start == s.size()) return std::nullopt;
  for (size_t i = start; i < s.size(); ++i)
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) return std::nullopt;
  int64_t v = 0;
  const char* first = s.data() + (s[0] == '+' ? 1 : 0);
  auto res = std::from_chars(first, s.data() + s.size(), v);
  if (res.ec != std::errc() || res.ptr != s.data() + s.size()) return std::nullopt;  // overflow
  return v;
}

// A finite decimal number: "1", "-0.5", "1e-3", ".5"; no hex, inf or nan.
std::optional<double> parse_double(const std::string& s) {
  size_t i = 0, n = s.size(), digits = 0;
  if (i < n && (s[i] == '+' || s[i] == '-')) ++i;
  size_t number_start = (n > 0 && s[0] == '+') ? 1 : 0;  // from_chars takes no '+'
  while (i < n && std::isdigit(static_cast<unsigned char>(s[i]))) ++i, ++digits;
  if (i < n && s[i] == '.') {
    ++i;
    while (i < n && std::isdigit(static_cast<unsigned char>(s[i]))) ++i, ++digits;
  }
  if (digits == 0) return std::nullopt;
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < n && (s[i] == '+' || s[i] == '-')) ++i;
    size_t exp_digits = 0;
    while (i < n && std::isdigit(static_cast<unsigned char>(s[i]))) ++i, ++exp_digits;
    if (exp_digits == 0) return std::nullopt;
  }
  if (i != n) return std::nullopt;
  double v = 0;
  auto res = std::from_chars(s.data() + number_start, s.data() + n, v);
  if (res.ec != std::errc() || res.ptr != s.data() + n) return std::nullopt;  // out of range
  return v;
}

std::optional<bool> parse_bool(const std::string& s) {
  std::string l = lower(s);
  if (l == "true" || l == "yes" || l == "on") return true;
  if (l == "false" || l == "no" || l == "off") return false;
  return std::nullopt;
}

bool is_quoted(const YAML::Node& n) { return n.IsScalar() && n.Tag() == "!"; }

// A node as a message shows it: 'abc', the quoted string '12', the list [1, 2], nothing (null).
std::string show(const YAML::Node& n) {
  if (!n.IsDefined() || n.IsNull()) return "nothing (null)";
  if (n.IsScalar()) return is_quoted(n) ? cat("the quoted string '", n.Scalar(), "'") : cat("'", n.Scalar(), "'");
  YAML::Emitter e;
  e.SetMapFormat(YAML::Flow);
  e.SetSeqFormat(YAML::Flow);
  e << n;
  std::string text = e.c_str();
  if (text.size() > 60) text = text.substr(0, 57) + "...";
  return cat(n.IsMap() ? "the map " : "the list ", text);
}

}  // namespace reel::trainer::detail
