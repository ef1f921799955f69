// A small command-line flag parser: `--name value`, `--name=value` and boolean `--name`.
// A flag with an optional value (`--timing`, `--timing 100`, `--timing=100`) takes the next argument as
// its value unless that starts with "--"; given bare, the getters return their fallback.
//
// Each command declares the flags it accepts; anything else, a missing value, a malformed number
// or a value out of range is a UsageError naming the flag.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace convnet {

class Flags {
 public:
  // value_flags take a value, bool_flags do not. args excludes the program and command names.
  Flags(const std::string& command, const std::vector<std::string>& args, const std::set<std::string>& value_flags,
        const std::set<std::string>& bool_flags, const std::set<std::string>& optional_value_flags = {});

  bool has(const std::string& name) const { return values_.count(name) != 0; }
  std::string get(const std::string& name, const std::string& fallback) const;
  int64_t get_int(const std::string& name, int64_t fallback, int64_t lo, int64_t hi) const;
  uint64_t get_u64(const std::string& name, uint64_t fallback) const;
  // Accepts [lo, hi] or, with hi_open, [lo, hi); lo_open likewise.
  double get_double(const std::string& name, double fallback, double lo, double hi, bool lo_open = false,
                    bool hi_open = false) const;
  const std::vector<std::string>& positional() const { return positional_; }

 private:
  std::string command_;
  // The value given, or nullptr when the flag is absent or given bare.
  const std::string* value(const std::string& name) const;

  std::map<std::string, std::string> values_;
  std::set<std::string> bare_;  // optional-value flags given without a value
  std::vector<std::string> positional_;
};

}  // namespace convnet
