// `convnet train --log`: every line is strict JSON (checked by a small RFC 8259 parser below, not by
// searching for substrings) with every field, holding the run's own numbers, NaN written as null,
// lines appended across runs; and bench/plot_metrics.py turns such logs into a PNG, refusing a
// malformed line with file:line.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>
#include <utility>

#include "backend.h"
#include "backend_double.h"
#include "child_process.h"
#include "errors.h"
#include "process.h"
#include "temp_dir.h"
#include "train_fixtures.h"
#include "train_log.h"
#include "trainer.h"

namespace convnet::test {
namespace {

// ---- strict JSON: one object of scalar values per line -----------------------------------------

struct JsonValue {
  enum Kind { Null, Bool, Number, String } kind = Null;
  double number = 0.0;
  std::string text;
};
using JsonObject = std::map<std::string, JsonValue>;

class JsonLineParser {
 public:
  explicit JsonLineParser(const std::string& s) : s_(s) {}

  // The line must be exactly one JSON object (scalar values, unique keys) and a final '\n'.
  bool parse(JsonObject* out, std::string* error) {
    try {
      space();
      expect('{');
      space();
      if (peek() != '}') {
        for (;;) {
          space();
          std::string key = string();
          space();
          expect(':');
          space();
          if (!out->emplace(key, value()).second) fail("duplicate key '" + key + "'");
          space();
          if (peek() == ',') {
            ++pos_;
            continue;
          }
          break;
        }
      }
      expect('}');
      space();
      expect('\n');
      if (pos_ != s_.size()) fail("text after the line's end");
      return true;
    } catch (const std::runtime_error& e) {
      *error = e.what();
      return false;
    }
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw std::runtime_error(what + " at column " + std::to_string(pos_ + 1));
  }
  char peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
  void expect(char c) {
    if (peek() != c) fail(std::string("expected '") + (c == '\n' ? std::string("\\n") : std::string(1, c)) + "'");
    ++pos_;
  }
  void space() {
    while (peek() == ' ' || peek() == '\t' || peek() == '\r') ++pos_;
  }
  bool digits() {
    const size_t start = pos_;
    while (peek() >= '0' && peek() <= '9') ++pos_;
    return pos_ > start;
  }
  std::string string() {
    expect('"');
    std::string out;
    for (;;) {
      const char c = peek();
      if (c == '\0' || c == '\n') fail("unterminated string");
      ++pos_;
      if (c == '"') return out;
      if (static_cast<unsigned char>(c) < 0x20) fail("raw control character in a string");
      if (c != '\\') {
        out += c;
        continue;
      }
      const char e = peek();
      ++pos_;
      if (e == 'u') {
        for (int i = 0; i < 4; ++i, ++pos_)
          if (!std::isxdigit(static_cast<unsigned char>(peek()))) fail("bad \\u escape");
        out += '?';
      } else if (std::string("\"\\/bfnrt").find(e) != std::string::npos && e != '\0') {
        out += e;
      } else {
        fail("bad escape");
      }
    }
  }
  JsonValue value() {
    JsonValue v;
    const char c = peek();
    if (c == '"') {
      v.kind = JsonValue::String;
      v.text = string();
    } else if (s_.compare(pos_, 4, "null") == 0) {
      pos_ += 4;
    } else if (s_.compare(pos_, 4, "true") == 0 || s_.compare(pos_, 5, "false") == 0) {
      v.kind = JsonValue::Bool;
      pos_ += c == 't' ? 4 : 5;
    } else {  // number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
      const size_t start = pos_;
      if (peek() == '-') ++pos_;
      if (peek() == '0') {
        ++pos_;
      } else if (!(peek() >= '1' && peek() <= '9') || !digits()) {
        fail("expected a value");  // NaN, Infinity, +1, .5 all end here
      }
      if (peek() == '.') {
        ++pos_;
        if (!digits()) fail("expected digits after '.'");
      }
      if (peek() == 'e' || peek() == 'E') {
        ++pos_;
        if (peek() == '+' || peek() == '-') ++pos_;
        if (!digits()) fail("expected exponent digits");
      }
      v.kind = JsonValue::Number;
      v.number = std::stod(s_.substr(start, pos_ - start));
    }
    return v;
  }

  const std::string& s_;
  size_t pos_ = 0;
};

JsonObject parse_line(const std::string& line) {
  JsonObject o;
  std::string error;
  EXPECT_TRUE(JsonLineParser(line).parse(&o, &error)) << error << "\n" << line;
  return o;
}

std::vector<std::string> lines_of(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string l; std::getline(in, l);) lines.push_back(l + "\n");
  return lines;
}

TEST(JsonLineParser, AcceptsJsonAndRefusesWhatIsNot) {
  JsonObject o;
  std::string error;
  EXPECT_TRUE(JsonLineParser("{\"a\":1,\"b\":-0.5e-3,\"c\":null,\"d\":\"x\\\"y\",\"e\":true}\n").parse(&o, &error))
      << error;
  EXPECT_EQ(o.size(), 5u);
  for (const char* bad : {"{\"a\":NaN}\n", "{\"a\":nan}\n", "{\"a\":inf}\n", "{\"a\":01}\n", "{\"a\":1.}\n",
                          "{\"a\":1}", "{\"a\":1,}\n", "{\"a\":1}{}\n", "{\"a\":\"x\ny\"}\n", "{a:1}\n",
                          "{\"a\":1,\"a\":2}\n", "[1]\n"}) {
    JsonObject ignored;
    EXPECT_FALSE(JsonLineParser(bad).parse(&ignored, &error)) << bad;
  }
}

// ---- the log lines -----------------------------------------------------------------------------

// v as the log writes it (at "%.10g" unless said) and the parser reads it back.
double printed(double v, const char* format = "%.10g") {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return std::strtod(buf, nullptr);
}

const char* const kFields[] = {"epoch",   "step",    "loss",          "accuracy",         "val_loss",
                               "val_accuracy", "seconds", "images_per_second", "learning_rate", "device"};

TEST(TrainLog, EveryEpochIsOneStrictJsonLineAndRunsAppend) {
  TempDir dir("convnet_log");
  const std::string log = dir.file("run.jsonl");
  Dataset data = bar_dataset(240, 40, 5);
  BackendConfig bc;
  bc.max_batch = 32;
  Model model = build_model("conv4-pool-flatten-dropout0.3-dense10");
  TrainConfig tc;
  tc.epochs = 2;
  tc.batch = 32;
  tc.val_split = 0.25;
  tc.test = false;
  tc.log_path = log;
  tc.learning_rate = 0.001;
  tc.device = "cpu \"quoted\"\tand tabbed";
  std::ostringstream out;
  auto backend = make_cpu_backend(model, bc);
  std::vector<EpochStats> epochs = train_model(*backend, data, tc, out).epochs;
  tc.val_split = 0.0;  // a second run appends; without validation its val fields are null
  tc.epochs = 1;
  auto second = make_cpu_backend(model, bc);
  const std::vector<EpochStats> more = train_model(*second, data, tc, out).epochs;
  epochs.insert(epochs.end(), more.begin(), more.end());

  const std::vector<std::string> lines = lines_of(log);
  ASSERT_EQ(lines.size(), 3u);
  ASSERT_EQ(epochs.size(), 3u);
  for (size_t i = 0; i < lines.size(); ++i) {
    SCOPED_TRACE("line " + std::to_string(i + 1));
    JsonObject o = parse_line(lines[i]);
    const EpochStats& e = epochs[i];
    EXPECT_EQ(o.size(), std::size(kFields));
    for (const char* f : kFields) EXPECT_EQ(o.count(f), 1u) << f;
    EXPECT_EQ(o["epoch"].number, i < 2 ? static_cast<double>(i + 1) : 1.0);
    EXPECT_EQ(o["epoch"].number, e.epoch);
    EXPECT_EQ(o["step"].number, i < 2 ? 6.0 * static_cast<double>(i + 1) : 8.0);  // 180/32, 240/32 steps
    EXPECT_EQ(o["step"].number, static_cast<double>(e.global_step));
    // The numbers are the run's own metrics (TrainSummary), at the 10 digits the log prints.
    EXPECT_EQ(o["loss"].kind, JsonValue::Number);
    EXPECT_EQ(o["loss"].number, printed(e.train.loss()));
    EXPECT_EQ(o["accuracy"].number, printed(e.train.accuracy()));
    EXPECT_EQ(o["val_loss"].kind, i < 2 ? JsonValue::Number : JsonValue::Null);
    EXPECT_EQ(o["val_accuracy"].kind, i < 2 ? JsonValue::Number : JsonValue::Null);
    if (i < 2) {
      EXPECT_EQ(o["val_loss"].number, printed(e.val.loss()));
      EXPECT_EQ(o["val_accuracy"].number, printed(e.val.accuracy()));
      // Training and validation differ, so a field written from the other's metrics shows.
      EXPECT_NE(e.train.accuracy(), e.val.accuracy());
      EXPECT_NE(e.train.loss(), e.val.loss());
    }
    EXPECT_GE(o["seconds"].number, 0.0);
    EXPECT_EQ(o["seconds"].number, printed(e.seconds, "%.3f"));
    EXPECT_GT(o["images_per_second"].number, 0.0);
    EXPECT_EQ(o["images_per_second"].number, printed(e.images_per_second, "%.1f"));
    EXPECT_EQ(o["learning_rate"].number, 0.001);  // written as the shortest text of the float
    EXPECT_EQ(o["device"].text, "cpu \"quoted\"?and tabbed");
  }
  EXPECT_NE(lines[0].find("\"learning_rate\":0.001,"), std::string::npos) << lines[0];
}

TEST(TrainLog, NonFiniteNumbersAreNull) {
  EpochLogEntry e;
  e.epoch = 3;
  e.step = 1266;
  e.train = Metrics{std::numeric_limits<double>::quiet_NaN(), 10, 100};
  e.val = Metrics{std::numeric_limits<double>::infinity(), 5, 50};
  e.seconds = 1.5;
  e.images_per_second = std::numeric_limits<double>::infinity();
  e.learning_rate = 0.01;
  e.device = "gpu 0: H100\n";
  const std::string line = epoch_log_line(e);
  JsonObject o = parse_line(line);
  EXPECT_EQ(o["loss"].kind, JsonValue::Null) << line;
  EXPECT_EQ(o["val_loss"].kind, JsonValue::Null) << line;
  EXPECT_EQ(o["images_per_second"].kind, JsonValue::Null) << line;
  EXPECT_EQ(o["accuracy"].number, 0.1);
  EXPECT_EQ(o["val_accuracy"].number, 0.1);
  EXPECT_EQ(line.find("nan"), std::string::npos);
  EXPECT_EQ(line.find("inf"), std::string::npos);
}

// A backend whose training loss is NaN: the trainer logs the epoch (loss null), then stops with
// NumericError, so a diverged run's log still says where it diverged.
class NanBackend final : public test::BackendDouble {
 public:
  void train_step(int set, int begin, int count) override {
    BackendDouble::train_step(set, begin, count);
    train_.loss_sum = std::nan("");
  }
};

TEST(TrainLog, ADivergedEpochIsLoggedBeforeTheRunStops) {
  TempDir dir("convnet_log");
  TrainConfig tc;
  tc.epochs = 3;
  tc.batch = 16;
  tc.test = false;
  tc.log_path = dir.file("nan.jsonl");
  NanBackend backend;
  std::ostringstream out;
  EXPECT_THROW(train_model(backend, bar_dataset(64, 8, 1), tc, out), NumericError);
  const std::vector<std::string> lines = lines_of(tc.log_path);
  ASSERT_EQ(lines.size(), 1u);
  JsonObject o = parse_line(lines[0]);
  EXPECT_EQ(o["loss"].kind, JsonValue::Null) << lines[0];
  EXPECT_EQ(o["epoch"].number, 1.0);
}

TEST(TrainLog, AnUnwritablePathIsAUsageErrorNamingTheFlag) {
  try {
    JsonLinesLog log("/nonexistent/folder/run.jsonl");
    ADD_FAILURE() << "opened";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("--log"), std::string::npos) << e.what();
  }
}

// ---- bench/plot_metrics.py ---------------------------------------------------------------------

// Runs python3 with args in dir; the exit code (127: no python3) and what it printed.
int run_python(const std::vector<std::string>& args, const TempDir& dir, std::string* out, std::string* err) {
  std::vector<std::string> argv = {"python3"};
  argv.insert(argv.end(), args.begin(), args.end());
  Child c(argv, dir.path(), dir.file("py.out"), dir.file("py.err"));
  const int code = c.wait(120);
  if (out) *out = c.out();
  if (err) *err = c.err();
  return code;
}

const std::string kPlotScript = source_dir() + "/bench/plot_metrics.py";

void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

std::string log_text(int epochs, double scale, bool with_val) {
  std::string s;
  for (int e = 1; e <= epochs; ++e) {
    EpochLogEntry x;
    x.epoch = e;
    x.step = 10 * e;
    x.train = Metrics{100.0 * scale / e, 90 - 60 / e, 100};
    if (with_val) x.val = Metrics{50.0 * scale / (e + 1), 45 - 20 / e, 50};
    x.seconds = 1.0;
    x.images_per_second = 100.0;
    x.learning_rate = 0.001;
    x.device = "cpu";
    s += epoch_log_line(x);
  }
  return s;
}

TEST(PlotMetrics, AMalformedLineIsRefusedNamingFileAndLine) {
  TempDir dir("convnet_plot");
  std::string out, err;
  if (run_python({"-c", "pass"}, dir, nullptr, nullptr) != 0) GTEST_SKIP() << "python3 is not installed";
  const std::string good = log_text(3, 1.0, true);
  write_text(dir.file("good.jsonl"), good);
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"{\"epoch\":1,\"loss\":NaN,\"accuracy\":0.5}\n", "NaN"},
      {"{\"epoch\":1,\"loss\":0.5\n", "JSON"},
      {"{\"epoch\":1,\"accuracy\":0.5}\n", "loss"},
      {"[1, 2]\n", "object"},
      {"{\"epoch\":\"one\",\"loss\":0.5,\"accuracy\":0.5}\n", "epoch"},
  };
  for (const auto& [line, why] : bad) {
    SCOPED_TRACE(line);
    // Two good lines, then the bad one: the message must say bad.jsonl:3.
    write_text(dir.file("bad.jsonl"), good.substr(0, good.find('\n', good.find('\n') + 1) + 1) + line);
    const int code = run_python({kPlotScript, "good.jsonl", "bad.jsonl", "--out", "x.png"}, dir, &out, &err);
    EXPECT_EQ(code, 2) << err;
    EXPECT_NE(err.find("bad.jsonl:3: "), std::string::npos) << err;
    EXPECT_NE(err.find(why), std::string::npos) << err;
    EXPECT_EQ(err.find("Traceback"), std::string::npos) << err;
  }
  const int missing = run_python({kPlotScript, "nothere.jsonl", "--out", "x.png"}, dir, &out, &err);
  EXPECT_EQ(missing, 2);
  EXPECT_NE(err.find("nothere.jsonl"), std::string::npos) << err;
}

TEST(PlotMetrics, ABinaryLogOrAnOutThatIsNotAPngPathIsRefusedInOneLine) {
  TempDir dir("convnet_plot");
  std::string out, err;
  if (run_python({"-c", "pass"}, dir, nullptr, nullptr) != 0) GTEST_SKIP() << "python3 is not installed";
  write_text(dir.file("good.jsonl"), log_text(2, 1.0, true));
  write_text(dir.file("binary.jsonl"), std::string("\x89PNG\r\n\x1a\n\xff\xfe\x00", 11));
  EXPECT_EQ(run_python({kPlotScript, "binary.jsonl", "--out", "x.png"}, dir, &out, &err), 2);
  EXPECT_NE(err.find("binary.jsonl: not a text file"), std::string::npos) << err;
  EXPECT_EQ(err.find("Traceback"), std::string::npos) << err;
  // matplotlib would write "noext.png" for "noext", refuse "x.txt" with a traceback, and "." is a folder.
  for (const std::string bad : {"noext", "x.txt", ".", "missing/x.png"}) {
    SCOPED_TRACE(bad);
    EXPECT_EQ(run_python({kPlotScript, "good.jsonl", "--out", bad}, dir, &out, &err), 2) << err;
    EXPECT_NE(err.find("plot_metrics.py: error: --out " + bad + ": "), std::string::npos) << err;
    EXPECT_EQ(err.find("Traceback"), std::string::npos) << err;
    EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
  }
  EXPECT_FALSE(std::filesystem::exists(dir.file("noext.png")));
}

TEST(PlotMetrics, DrawsLossAndAccuracyOfSeveralRunsIntoAPng) {
  TempDir dir("convnet_plot");
  if (run_python({"-c", "import matplotlib"}, dir, nullptr, nullptr) != 0)
    GTEST_SKIP() << "python3 with matplotlib is not installed (pip install matplotlib)";
  write_text(dir.file("adam.jsonl"), log_text(5, 1.0, true));
  write_text(dir.file("sgd.jsonl"), log_text(4, 2.0, false));
  std::string out, err;
  ASSERT_EQ(run_python({kPlotScript, "adam.jsonl", "sgd.jsonl", "--out", "curves.png"}, dir, &out, &err), 0) << err;
  const std::string png = [&] {
    std::ifstream in(dir.file("curves.png"), std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
  }();
  ASSERT_GT(png.size(), 10000u);
  EXPECT_EQ(png.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  EXPECT_NE(out.find("curves.png"), std::string::npos) << out;
  // Labels: one per log, else a clear error.
  EXPECT_EQ(run_python({kPlotScript, "adam.jsonl", "sgd.jsonl", "--out", "l.png", "--labels", "A", "B"}, dir, &out,
                       &err),
            0)
      << err;
  EXPECT_EQ(run_python({kPlotScript, "adam.jsonl", "sgd.jsonl", "--out", "l.png", "--labels", "A"}, dir, &out, &err),
            2);
  EXPECT_NE(err.find("--labels"), std::string::npos) << err;
}

}  // namespace
}  // namespace convnet::test
