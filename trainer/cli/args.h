// A small declarative command-line parser: each command declares its positionals, options and
// flags with help text; `--help` prints them; anything unknown or missing is a UserError.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace reel::cli {

class Args {
 public:
  bool flag(const std::string& name) const;
  bool has(const std::string& name) const;
  std::string get(const std::string& name, const std::string& fallback = "") const;
  int64_t get_int(const std::string& name, int64_t fallback) const;
  double get_double(const std::string& name, double fallback) const;
  const std::vector<std::string>& positionals() const { return positionals_; }

 private:
  friend class Command;
  std::map<std::string, std::string> values_;
  std::vector<std::string> positionals_;
};

class Command {
 public:
  Command(std::string usage, std::string summary);
  Command& option(const std::string& name, const std::string& value, const std::string& help);
  Command& flag(const std::string& name, const std::string& help);
  Command& positional(const std::string& name, const std::string& help);
  Command& min_positionals(int n) { min_positionals_ = n; return *this; }
  Command& max_positionals(int n) { max_positionals_ = n; return *this; }
  Command& note(const std::string& text) { notes_.push_back(text); return *this; }

  // Parses argv[first..argc); returns nullopt after printing help for --help/-h.
  std::optional<Args> parse(int argc, char** argv, int first) const;
  std::string help() const;

 private:
  struct Entry { std::string name, value, help; bool is_flag; };
  std::string usage_, summary_;
  std::vector<Entry> entries_;
  std::vector<std::pair<std::string, std::string>> positional_help_;
  std::vector<std::string> notes_;
  int min_positionals_ = 0, max_positionals_ = 0;
};

}  // namespace reel::cli
