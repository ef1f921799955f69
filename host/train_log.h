// `convnet train --log PATH`: one JSON object per epoch, one per line (JSON Lines), for
// bench/plot_metrics.py and any other tool.
//
//   {"epoch":1,"step":422,"loss":0.2431,"accuracy":0.9263,"val_loss":0.0712,"val_accuracy":0.9788,
//    "seconds":16.2,"images_per_second":3306.1,"learning_rate":0.001,"device":"cpu: ..."}
//
// epoch is 1-based; step is the optimiser's global step at the end of the epoch. Every value is a
// JSON number, string or null: a NaN or infinite loss is written as null (JSON has no NaN), and
// val_loss/val_accuracy are null when there is no validation split. The file is opened with
// O_APPEND and every line goes out in one write(2), so a resumed run appends to the same log, a
// line is on disk (in the kernel) as soon as its epoch ends, and a crash never leaves half a line
// from an earlier epoch.
#pragma once

#include <cstdint>
#include <string>

#include "backend.h"

namespace convnet {

struct EpochLogEntry {
  int epoch = 0;
  int64_t step = 0;
  Metrics train, val;  // val.count == 0: no validation
  double seconds = 0.0;
  double images_per_second = 0.0;
  double learning_rate = 0.0;
  std::string device;
};

// The entry as one line of JSON, newline included.
std::string epoch_log_line(const EpochLogEntry& e);

// An append-only JSON Lines file; the path "" is a log that writes nothing.
class JsonLinesLog {
 public:
  // Opens (creating) path for appending; throws UsageError naming --log when it cannot. A regular
  // file whose last line was cut short (a full disk, a crash) gets a newline before the first new
  // line, so the new line is not glued onto the cut one.
  explicit JsonLinesLog(const std::string& path);
  ~JsonLinesLog();
  JsonLinesLog(const JsonLinesLog&) = delete;
  JsonLinesLog& operator=(const JsonLinesLog&) = delete;

  // Appends line (which ends in '\n') with one write; throws InputError naming the file on failure.
  void append(const std::string& line);

 private:
  std::string path_;
  int fd_ = -1;
  bool cut_line_ = false;  // the file ends without '\n'
};

}  // namespace convnet
