// convnet predict: classify users' images of single handwritten digits with a trained model.
//
// Each IMAGE is read as grey (image_io.h) and preprocessed the MNIST way (preprocess.h); the good
// ones go through the backend together, as one image set evaluated in batches of up to 256 (the
// same evaluate() as `eval`, so CPU and GPU give the same answers). A bad image costs only its own
// line: "convnet: error: <file>: <what>" on stderr, the others still print, and the exit code is
// 2 when any failed. Output: one line per image, "<file>: 7 (98.1%), 1 (1.2%), 9 (0.3%)", or with
// --json one JSON array with an object per good image, in argument order:
//   {"file": "...", "top3": [{"digit": 7, "probability": 0.981}, ...], "probabilities": [p0, ..., p9]}
// File names are escaped for JSON; bytes that are not UTF-8 become U+FFFD.
#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "commands.h"
#include "errors.h"
#include "image_io.h"
#include "checkpoint.h"
#include "model_io.h"
#include "output_file.h"
#include "preprocess.h"
#include "trainer.h"

namespace convnet {

namespace {

const char* const kPredictHelp =
    "usage: convnet predict --model PATH [flags] IMAGE...\n"
    "  --model PATH              a model from 'convnet train --save', or a --checkpoint file\n"
    "  --json                    print one JSON array: per image file, top3 [{digit, probability}] and\n"
    "                            probabilities [10]\n"
    "  --save-preprocessed DIR   write the 28x28 the network saw as DIR/<file name>.28x28.png (DIR is created)\n"
    "  --device D                auto (default: the GPU when there is one), gpu or cpu\n"
    "  --sync-launches           GPU debugging: wait for every kernel, so a fault names its kernel (slow)\n"
    "IMAGE: PNG, JPEG, BMP, binary PGM/PPM or GIF of one digit, any size, dark on light or light on dark.\n"
    "It is prepared as MNIST was: background found from the border and inverted to light-on-black, cropped\n"
    "to the digit, scaled (area averaging) so its longer side is 20 pixels, centred by mass in 28x28.\n";

constexpr int kPredictBatch = 256;

struct Prepared {
  std::string file;
  std::vector<uint8_t> pixels;  // (28, 28)
};

// Digits by falling probability (ties: the smaller digit first).
std::vector<int> ranked(const float* p) {
  std::vector<int> order(kNumClasses);
  for (int c = 0; c < kNumClasses; ++c) order[static_cast<size_t>(c)] = c;
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return p[a] > p[b]; });
  return order;
}

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') out += '\\', out += static_cast<char>(c), ++i;
    else if (c == '\n') out += "\\n", ++i;
    else if (c == '\t') out += "\\t", ++i;
    else if (c == '\r') out += "\\r", ++i;
    else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf, ++i;
    } else if (c < 0x80) {
      out += static_cast<char>(c), ++i;
    } else {  // copy one well-formed UTF-8 sequence (no overlongs, surrogates or > U+10FFFF)
      const int n = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 ? 2 : 0;
      bool ok = n > 0 && c <= 0xf4 && i + static_cast<size_t>(n) <= s.size();
      for (int k = 1; ok && k < n; ++k) ok = (static_cast<unsigned char>(s[i + static_cast<size_t>(k)]) & 0xc0) == 0x80;
      if (ok && n >= 3) {
        const auto c1 = static_cast<unsigned char>(s[i + 1]);
        ok = !(c == 0xe0 && c1 < 0xa0) && !(c == 0xed && c1 >= 0xa0) && !(c == 0xf0 && c1 < 0x90) &&
             !(c == 0xf4 && c1 >= 0x90);
      }
      if (ok) out.append(s, i, static_cast<size_t>(n)), i += static_cast<size_t>(n);
      else out += "\\ufffd", ++i;
    }
  }
  return out + "\"";
}

std::string json_number(float v) {
  if (!std::isfinite(v)) return "null";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", static_cast<double>(v));
  return buf;
}

std::string text_line(const std::string& file, const float* p) {
  std::string line = file + ":";
  const std::vector<int> order = ranked(p);
  for (int k = 0; k < 3; ++k) {
    char buf[48];
    std::snprintf(buf, sizeof buf, "%s %d (%.1f%%)", k ? "," : "", order[static_cast<size_t>(k)],
                  100.0 * static_cast<double>(p[order[static_cast<size_t>(k)]]));
    line += buf;
  }
  return line;
}

std::string json_object(const std::string& file, const float* p) {
  std::string o = "{\"file\": " + json_string(file) + ", \"top3\": [";
  const std::vector<int> order = ranked(p);
  for (int k = 0; k < 3; ++k) {
    const int d = order[static_cast<size_t>(k)];
    o += (k ? ", " : "") + std::string("{\"digit\": ") + std::to_string(d) + ", \"probability\": " + json_number(p[d]) + "}";
  }
  o += "], \"probabilities\": [";
  for (int c = 0; c < kNumClasses; ++c) o += (c ? ", " : "") + json_number(p[c]);
  return o + "]}";
}

// DIR/<basename>.28x28.png, with -2, -3, ... before the suffix when an earlier image of this run
// had the same base name (a/7.png and b/7.png), so no preview overwrites another.
std::string preview_path(const std::string& dir, const std::string& file, std::set<std::string>* used) {
  std::string base = file.substr(file.find_last_of('/') == std::string::npos ? 0 : file.find_last_of('/') + 1);
  if (base.empty()) base = "image";
  std::string name = base + ".28x28.png";
  for (int k = 2; used->count(name); ++k) name = base + "-" + std::to_string(k) + ".28x28.png";
  used->insert(name);
  return dir + "/" + name;
}

void make_dir(const std::string& dir) {
  struct stat st {};
  if (stat(dir.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) throw UsageError("--save-preprocessed: " + dir + " exists and is not a directory");
  } else {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);  // with its parents, as `mkdir -p`
    if (ec) throw UsageError("--save-preprocessed: cannot create directory " + dir + ": " + ec.message());
  }
  check_output_folder("save-preprocessed", dir);  // a read-only one, before any image is read
}

// Reads and preprocesses every image; a failure prints its one line and sets *failed.
std::vector<Prepared> prepare_images(const std::vector<std::string>& files, const std::string& save_dir,
                                     bool* failed) {
  std::vector<Prepared> good;
  std::set<std::string> used;
  for (const std::string& file : files) {
    try {
      PreprocessedDigit d = preprocess_digit(load_image_gray(file), file);
      good.push_back({file, std::move(d.pixels)});
      // A preview that cannot be written is reported, but the image itself is fine and is predicted.
      if (!save_dir.empty())
        write_png(preview_path(save_dir, file, &used), Image{kImageSide, kImageSide, 1, good.back().pixels});
    } catch (const InputError& e) {
      std::fprintf(stderr, "convnet: error: %s\n", e.what());
      *failed = true;
    }
  }
  return good;
}

}  // namespace

int cmd_predict(const std::vector<std::string>& args) {
  if (wants_help(args)) return std::cout << kPredictHelp, 0;
  const PredictOptions o = parse_predict_options(args, probe_cuda_device);
  enable_sync_launches(o.sync_launches);
  const TrainedModel trained = load_model_or_checkpoint(o.model_path);
  if (!o.save_dir.empty()) make_dir(o.save_dir);

  bool failed = false;
  const std::vector<Prepared> good = prepare_images(o.images, o.save_dir, &failed);
  const int n = static_cast<int>(good.size());
  std::vector<float> probs(static_cast<size_t>(n) * kNumClasses);
  if (n > 0) {
    ImageSet set;
    set.count = n;
    set.labels.assign(static_cast<size_t>(n), 0);  // unused: only the probabilities are read
    for (const Prepared& p : good) set.images.insert(set.images.end(), p.pixels.begin(), p.pixels.end());
    BackendConfig bc;
    bc.max_batch = std::min(n, kPredictBatch);
    std::unique_ptr<Backend> backend = make_trained_backend(o.device, trained.model, trained.params, bc);
    evaluate(*backend, backend->add_images(set), 0, n, bc.max_batch, probs.data());
  }
  const bool json = o.json;
  if (json) std::printf("[");
  for (int i = 0; i < n; ++i) {
    const float* p = probs.data() + static_cast<size_t>(i) * kNumClasses;
    const std::string& file = good[static_cast<size_t>(i)].file;
    if (json) std::printf("%s\n%s", i ? "," : "", json_object(file, p).c_str());
    else std::printf("%s\n", text_line(file, p).c_str());
  }
  if (json) std::printf("%s]\n", n ? "\n" : "");
  std::fflush(stdout);
  return failed ? kExitUsage : 0;
}

}  // namespace convnet
