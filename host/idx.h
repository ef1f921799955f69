// MNIST-family datasets in IDX format (raw or gzip-compressed).
//
// images: idx3, magic 2051, big-endian u32 count, rows, cols, then count*rows*cols u8 pixels
// labels: idx1, magic 2049, big-endian u32 count, then count u8 labels
// Both namings are accepted: `train-images-idx3-ubyte[.gz]` and `train-images.idx3-ubyte[.gz]`
// (likewise t10k-*). Every malformed input throws InputError with ONE line naming the file and
// what is wrong (byte offset where it helps); declared sizes are checked against what the file
// actually holds before anything is allocated.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace convnet {

constexpr int kImageSide = 28;
constexpr int kImagePixels = kImageSide * kImageSide;
constexpr int kNumClasses = 10;

// count images of 28x28 u8 pixels (row-major) with their labels in [0, 10).
struct ImageSet {
  int count = 0;
  std::vector<uint8_t> images;  // (count, 28, 28)
  std::vector<uint8_t> labels;  // (count)
};

struct Dataset {
  std::string name;  // "mnist" or "fashion"
  std::string dir;   // where it was read from
  ImageSet train;    // 60,000 for MNIST
  ImageSet test;     // 10,000
};

// The whole content of a file, gunzipped when it starts with the gzip magic. Throws InputError.
std::vector<uint8_t> read_maybe_gzip(const std::string& path);

// Parse one IDX file. `path` is used in messages only. Throws InputError.
std::vector<uint8_t> parse_idx_images(const std::vector<uint8_t>& bytes, const std::string& path, int* count);
std::vector<uint8_t> parse_idx_labels(const std::vector<uint8_t>& bytes, const std::string& path, int* count);

// Load an images file and its labels file; checks the counts agree and labels are < 10.
ImageSet load_idx_pair(const std::string& images_path, const std::string& labels_path);

// Find `stem` (e.g. "train-images", "t10k-labels") in dir under any accepted naming. Throws
// InputError listing the names tried when none exists.
std::string find_idx_file(const std::string& dir, const std::string& stem);

// Which files of a dataset to load: eval and show need only the test files, train --no-test only the
// training files, so a folder holding just those serves them.
enum class Splits { TrainAndTest, TrainOnly, TestOnly };

// Load train and test splits from dir (the split not asked for stays empty).
Dataset load_dataset(const std::string& dir, const std::string& name, Splits splits = Splits::TrainAndTest);

// The data directory to use: the --data flag if given, else for "mnist" $MNIST_DIR then
// "data/mnist", for "fashion" /usr/share/datasets/fashion-mnist. Throws UsageError for other names.
std::string default_data_dir(const std::string& flag_value, const std::string& dataset_name);

}  // namespace convnet
