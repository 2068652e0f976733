// Command-line parsing.
#include "trainer/cli/args.h"

#include <cstdio>
#include <cstdlib>

#include "common/error.h"

namespace reel::cli {

bool Args::flag(const std::string& name) const { return values_.count(name) > 0; }
bool Args::has(const std::string& name) const { return values_.count(name) > 0; }

std::string Args::get(const std::string& name, const std::string& fallback) const {
  auto it = values_.find(name);
  return it == values_.end() ? fallback : it->second;
}

int64_t Args::get_int(const std::string& name, int64_t fallback) const {
  auto it = values_.find(name);
  if (it == values_.end()) return fallback;
  char* end = nullptr;
  long long v = std::strtoll(it->second.c_str(), &end, 10);
  if (it->second.empty() || *end != '\0') fail("--", name, " must be an integer, got '", it->second, "'");
  return v;
}

double Args::get_double(const std::string& name, double fallback) const {
  auto it = values_.find(name);
  if (it == values_.end()) return fallback;
  char* end = nullptr;
  double v = std::strtod(it->second.c_str(), &end);
  if (it->second.empty() || *end != '\0') fail("--", name, " must be a number, got '", it->second, "'");
  return v;
}

Command::Command(std::string usage, std::string summary) : usage_(std::move(usage)), summary_(std::move(summary)) {}

Command& Command::option(const std::string& name, const std::string& value, const std::string& help) {
  entries_.push_back({name, value, help, false});
  return *this;
}
Command& Command::flag(const std::string& name, const std::string& help) {
  entries_.push_back({name, "", help, true});
  return *this;
}
Command& Command::positional(const std::string& name, const std::string& help) {
  positional_help_.emplace_back(name, help);
  return *this;
}

namespace {

// "  NAME                     text", the text's further lines indented under its first.
std::string help_line(const std::string& name, const std::string& text) {
  std::string line = "  " + name;
  line += std::string(name.size() < 24 ? 25 - name.size() : 1, ' ');
  for (char c : text) line += c == '\n' ? std::string("\n") + std::string(27, ' ') : std::string(1, c);
  return line + "\n";
}

}  // namespace

std::string Command::help() const {
  std::string h = "usage: " + usage_ + "\n\n" + summary_ + "\n";
  if (!positional_help_.empty()) {
    h += "\narguments:\n";
    for (const auto& [name, text] : positional_help_) h += help_line(name, text);
  }
  h += "\noptions:\n";
  for (const Entry& e : entries_) {
    h += help_line((e.name.size() == 1 ? "-" : "--") + e.name + (e.is_flag ? "" : " " + e.value), e.help);
  }
  h += "  --help                   show this help\n";
  for (const std::string& n : notes_) h += "\n" + n + "\n";
  return h;
}

std::optional<Args> Command::parse(int argc, char** argv, int first) const {
  Args args;
  for (int i = first; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::fputs(help().c_str(), stdout);
      return std::nullopt;
    }
    const bool short_option = a.size() == 2 && a[0] == '-' && a[1] != '-';  // "-o": the option named "o"
    if (a.rfind("--", 0) == 0 || short_option) {
      std::string name = a.substr(short_option ? 1 : 2), value;
      bool inline_value = false;
      if (auto eq = name.find('='); eq != std::string::npos) {
        value = name.substr(eq + 1);
        name = name.substr(0, eq);
        inline_value = true;
      }
      const Entry* entry = nullptr;
      for (const Entry& e : entries_) if (e.name == name) entry = &e;
      if (entry == nullptr) fail("unknown option '--", name, "' for `", usage_, "`; see --help");
      if (entry->is_flag) {
        if (inline_value) fail("option '--", name, "' takes no value");
        args.values_[name] = "1";
      } else {
        if (!inline_value) {
          if (i + 1 >= argc) fail("option '--", name, "' needs a value (", entry->value, ")");
          value = argv[++i];
        }
        args.values_[name] = value;
      }
    } else {
      args.positionals_.push_back(a);
    }
  }
  int n = static_cast<int>(args.positionals_.size());
  if (n < min_positionals_) fail("missing argument for `", usage_, "`; see --help");
  if (max_positionals_ >= 0 && n > max_positionals_) {
    fail("unexpected argument '", args.positionals_[max_positionals_], "' for `", usage_, "`; see --help");
  }
  return args;
}

}  // namespace reel::cli
