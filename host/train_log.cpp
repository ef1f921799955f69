// The per-epoch JSON Lines log (see train_log.h).
#include "train_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "errors.h"

namespace convnet {
namespace {

// A JSON number in printf `format`, or null when v is NaN or infinite (JSON has neither).
std::string number(double v, const char* format) {
  if (!std::isfinite(v)) return "null";
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

// A JSON string: quotes, backslashes and control characters escaped.
std::string quoted(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

// The shortest decimal that reads back as the same float: the learning rate the user typed (0.001f
// is 0.00100000005 at the 9 digits that round-trip every float).
std::string float_number(double v) {
  if (!std::isfinite(v)) return "null";
  char buf[64];
  for (int digits = 1; digits <= 9; ++digits) {
    std::snprintf(buf, sizeof buf, "%.*g", digits, v);
    if (static_cast<float>(std::strtod(buf, nullptr)) == static_cast<float>(v)) break;
  }
  return buf;
}

}  // namespace

std::string epoch_log_line(const EpochLogEntry& e) {
  const bool val = e.val.count > 0;
  const double nan = std::nan("");
  std::string s = "{\"epoch\":" + std::to_string(e.epoch) + ",\"step\":" + std::to_string(e.step);
  s += ",\"loss\":" + number(e.train.loss(), "%.10g");
  s += ",\"accuracy\":" + number(e.train.accuracy(), "%.10g");
  s += ",\"val_loss\":" + number(val ? e.val.loss() : nan, "%.10g");
  s += ",\"val_accuracy\":" + number(val ? e.val.accuracy() : nan, "%.10g");
  s += ",\"seconds\":" + number(e.seconds, "%.3f");
  s += ",\"images_per_second\":" + number(e.images_per_second, "%.1f");
  s += ",\"learning_rate\":" + float_number(e.learning_rate);
  s += ",\"device\":" + quoted(e.device) + "}\n";
  return s;
}

JsonLinesLog::JsonLinesLog(const std::string& path) : path_(path) {
  if (path.empty()) return;
  fd_ = open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd_ < 0) throw UsageError("--log: cannot open " + path + " for appending: " + std::strerror(errno));
  struct stat st {};
  if (fstat(fd_, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
    const int rd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    char last = '\n';
    if (rd >= 0) {
      if (pread(rd, &last, 1, st.st_size - 1) != 1) last = '\n';
      close(rd);
    }
    cut_line_ = last != '\n';
  }
}

JsonLinesLog::~JsonLinesLog() {
  if (fd_ >= 0) close(fd_);
}

void JsonLinesLog::append(const std::string& entry) {
  if (fd_ < 0) return;
  const std::string line = cut_line_ ? "\n" + entry : entry;
  ssize_t n;
  do {
    n = write(fd_, line.data(), line.size());
  } while (n < 0 && errno == EINTR);
  if (n == static_cast<ssize_t>(line.size())) cut_line_ = false;
  if (n != static_cast<ssize_t>(line.size()))
    throw InputError(path_ + ": cannot write the training log: " +
                     (n < 0 ? std::strerror(errno) : std::string("short write (disk full?)")));
}

}  // namespace convnet
