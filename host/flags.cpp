// Command-line flags (see flags.h).
#include "flags.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>

#include "errors.h"

namespace convnet {

Flags::Flags(const std::string& command, const std::vector<std::string>& args,
             const std::set<std::string>& value_flags, const std::set<std::string>& bool_flags,
             const std::set<std::string>& optional_value_flags)
    : command_(command) {
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a.size() < 3 || a.compare(0, 2, "--") != 0) {
      if (!a.empty() && a[0] == '-' && a != "-")
        throw UsageError("unknown option '" + a + "' for 'convnet " + command + "' (see convnet " + command +
                         " --help)");
      positional_.push_back(a);
      continue;
    }
    std::string name = a.substr(2), value;
    size_t eq = name.find('=');
    bool inline_value = eq != std::string::npos;
    if (inline_value) {
      value = name.substr(eq + 1);
      name.resize(eq);
    }
    if (value_flags.count(name)) {
      if (!inline_value) {
        if (i + 1 >= args.size()) throw UsageError("--" + name + ": missing value");
        value = args[++i];
      }
    } else if (optional_value_flags.count(name)) {
      if (!inline_value && i + 1 < args.size() && args[i + 1].compare(0, 2, "--") != 0) value = args[++i];
      else if (!inline_value) bare_.insert(name);
    } else if (bool_flags.count(name)) {
      if (inline_value) throw UsageError("--" + name + ": takes no value");
      value = "1";
    } else {
      throw UsageError("unknown flag --" + name + " for 'convnet " + command + "' (see convnet " + command +
                       " --help)");
    }
    if (values_.count(name)) throw UsageError("--" + name + ": given more than once");
    values_[name] = value;
  }
}

const std::string* Flags::value(const std::string& name) const {
  auto it = values_.find(name);
  return it == values_.end() || bare_.count(name) ? nullptr : &it->second;
}

std::string Flags::get(const std::string& name, const std::string& fallback) const {
  const std::string* v = value(name);
  return v ? *v : fallback;
}

int64_t Flags::get_int(const std::string& name, int64_t fallback, int64_t lo, int64_t hi) const {
  const std::string* given = value(name);
  if (!given) return fallback;
  const std::string& s = *given;
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0' || errno == ERANGE)
    throw UsageError("--" + name + ": expected an integer, got '" + s + "'");
  if (v < lo || v > hi)
    throw UsageError("--" + name + ": " + s + " is out of range (expected " + std::to_string(lo) + " to " +
                     std::to_string(hi) + ")");
  return v;
}

uint64_t Flags::get_u64(const std::string& name, uint64_t fallback) const {
  const std::string* given = value(name);
  if (!given) return fallback;
  const std::string& s = *given;
  char* end = nullptr;
  errno = 0;
  unsigned long long v = std::strtoull(s.c_str(), &end, 10);
  // A digit first: strtoull skips leading blanks and negates a '-' after them, so " -1" passed a
  // s[0] == '-' test and became 18446744073709551615.
  if (s.empty() || s[0] < '0' || s[0] > '9' || *end != '\0' || errno == ERANGE)
    throw UsageError("--" + name + ": expected a non-negative integer, got '" + s + "'");
  return v;
}

double Flags::get_double(const std::string& name, double fallback, double lo, double hi, bool lo_open,
                         bool hi_open) const {
  const std::string* given = value(name);
  if (!given) return fallback;
  const std::string& s = *given;
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (s.empty() || *end != '\0' || !std::isfinite(v))
    throw UsageError("--" + name + ": expected a number, got '" + s + "'");
  bool ok = (lo_open ? v > lo : v >= lo) && (hi_open ? v < hi : v <= hi);
  if (!ok) {
    char range[96];
    std::snprintf(range, sizeof range, "%s%g, %g%s", lo_open ? "(" : "[", lo, hi, hi_open ? ")" : "]");
    throw UsageError("--" + name + ": " + s + " is out of range (expected " + range + ")");
  }
  return v;
}

}  // namespace convnet
