// IDX dataset reader (MNIST, Fashion-MNIST), raw or gzip-compressed. Implements idx.h.
//
// A file is read whole (never more than kMaxIdxBytes, compressed or not, so a gzip bomb or a
// mislabelled multi-gigabyte file is refused instead of eating memory), then parsed:
//   images: u32 magic 2051 | u32 count | u32 rows | u32 cols | count*rows*cols u8   (big-endian)
//   labels: u32 magic 2049 | u32 count | count u8 in [0, 10)
// Every size the header declares is compared with the bytes actually present before anything is
// allocated, and the file must hold exactly what it declares (trailing bytes are an error: a
// silently partial or padded load would train on garbage). Every error is ONE line (no newline)
// "<path>: <what is wrong>", with the byte offset where it helps; for a .gz file offsets count
// decompressed bytes.
#include "idx.h"

#include <sys/stat.h>
#include <zlib.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "errors.h"

namespace convnet {
namespace {

// The largest IDX file accepted (MNIST train images are 47,040,016 bytes).
constexpr size_t kMaxIdxBytes = size_t{64} << 20;
constexpr uint32_t kImagesMagic = 2051;  // 0x00000803: u8 data, 3 dimensions
constexpr uint32_t kLabelsMagic = 2049;  // 0x00000801: u8 data, 1 dimension
constexpr size_t kImagesHeader = 16;
constexpr size_t kLabelsHeader = 8;

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw InputError(path + ": " + what);
}

std::string hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08" PRIx32, v);
  return buf;
}

uint32_t read_be32(const std::vector<uint8_t>& b, size_t at) {
  return (uint32_t{b[at]} << 24) | (uint32_t{b[at + 1]} << 16) | (uint32_t{b[at + 2]} << 8) |
         uint32_t{b[at + 3]};
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Offsets in messages count decompressed bytes for a .gz file; say so, or a reader would look for
// them in the compressed file.
std::string offset_text(const std::string& path, size_t offset) {
  return "byte offset " + std::to_string(offset) + (ends_with(path, ".gz") ? " of the decompressed data" : "");
}

std::string join_path(const std::string& dir, const std::string& name) {
  if (dir.empty()) return name;
  return dir.back() == '/' ? dir + name : dir + "/" + name;
}

// The raw bytes of a regular file of at most kMaxIdxBytes.
std::vector<uint8_t> read_whole_file(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) fail(path, std::string("cannot open: ") + std::strerror(errno));
  if (S_ISDIR(st.st_mode)) fail(path, "cannot read: is a directory, expected an IDX file");
  if (static_cast<uint64_t>(st.st_size) > kMaxIdxBytes)
    fail(path, "file is " + std::to_string(st.st_size) + " bytes, more than the " +
                   std::to_string(kMaxIdxBytes >> 20) + " MiB limit for an IDX file");
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) fail(path, std::string("cannot open: ") + std::strerror(errno));
  std::vector<uint8_t> bytes;
  uint8_t chunk[1 << 16];
  for (;;) {
    size_t n = std::fread(chunk, 1, sizeof chunk, f);
    bytes.insert(bytes.end(), chunk, chunk + n);
    if (n < sizeof chunk) break;
    if (bytes.size() > kMaxIdxBytes) break;  // the file grew after stat; refused below
  }
  int read_errno = std::ferror(f) ? errno : 0;
  std::fclose(f);
  if (read_errno != 0) fail(path, std::string("cannot read: ") + std::strerror(read_errno));
  if (bytes.size() > kMaxIdxBytes)
    fail(path, "file is more than the " + std::to_string(kMaxIdxBytes >> 20) + " MiB limit for an IDX file");
  return bytes;
}

// Inflate one or more concatenated gzip members (as gzip(1) does), refusing output past the cap.
std::vector<uint8_t> gunzip(const std::vector<uint8_t>& in, const std::string& path) {
  z_stream zs{};
  if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) fail(path, "cannot initialise zlib");
  std::vector<uint8_t> out;
  std::vector<uint8_t> chunk(1 << 18);
  zs.next_in = const_cast<Bytef*>(in.data());
  zs.avail_in = static_cast<uInt>(in.size());  // in.size() <= kMaxIdxBytes fits uInt
  std::string error;
  for (;;) {
    zs.next_out = chunk.data();
    zs.avail_out = static_cast<uInt>(chunk.size());
    int rc = inflate(&zs, Z_NO_FLUSH);
    size_t produced = chunk.size() - zs.avail_out;
    if (out.size() + produced > kMaxIdxBytes) {
      error = "decompresses to more than the " + std::to_string(kMaxIdxBytes >> 20) +
              " MiB limit for an IDX file (not an MNIST file, or a gzip bomb)";
      break;
    }
    out.insert(out.end(), chunk.data(), chunk.data() + produced);
    if (rc == Z_STREAM_END) {
      if (zs.avail_in == 0) break;
      size_t at = in.size() - zs.avail_in;
      if (zs.avail_in < 2 || in[at] != 0x1f || in[at + 1] != 0x8b) {
        error = "corrupt gzip data (" + std::to_string(zs.avail_in) +
                " bytes of trailing garbage after the gzip stream at byte offset " + std::to_string(at) + ")";
        break;
      }
      inflateReset(&zs);  // another gzip member follows
      continue;
    }
    if (rc == Z_OK) continue;
    if (rc == Z_BUF_ERROR && zs.avail_in == 0) {
      error = "corrupt gzip data (truncated: the compressed stream ends after " + std::to_string(in.size()) +
              " bytes, before its end marker)";
    } else {
      error = std::string("corrupt gzip data (") + (zs.msg ? zs.msg : "zlib error " + std::to_string(rc)) +
              " at compressed byte offset " + std::to_string(in.size() - zs.avail_in) + ")";
    }
    break;
  }
  inflateEnd(&zs);
  if (!error.empty()) fail(path, error);
  return out;
}

// "declares 60000 images of 28x28 (47040000 bytes)" / "declares 60000 labels (60000 bytes)".
std::string declared_text(uint32_t count, const char* what, const std::string& dims, uint64_t bytes) {
  return "declares " + std::to_string(count) + " " + what + dims + " (" + std::to_string(bytes) + " bytes)";
}

// Checks that exactly `need` payload bytes follow a header of `header` bytes.
void check_payload_size(const std::vector<uint8_t>& bytes, const std::string& path, size_t header,
                        uint64_t need, const std::string& declared) {
  uint64_t have = bytes.size() - header;
  if (have < need)
    fail(path, declared + " but only " + std::to_string(have) + " bytes follow the header at byte offset " +
                   std::to_string(header) + " (file truncated?)");
  if (have > need)
    fail(path, declared + " but " + std::to_string(have) + " bytes follow the header at byte offset " +
                   std::to_string(header) + ": " + std::to_string(have - need) +
                   " bytes of trailing garbage at " + offset_text(path, header + need));
}

// Empty file, too short for the header, or the wrong magic number.
void check_header(const std::vector<uint8_t>& bytes, const std::string& path, uint32_t magic, size_t header,
                  const char* kind) {
  if (bytes.empty()) fail(path, std::string("empty file (expected an ") + kind + ")");
  if (bytes.size() < 4)
    fail(path, "truncated header: the file has " + std::to_string(bytes.size()) + " bytes, an " + kind +
                   " header needs " + std::to_string(header));
  uint32_t found = read_be32(bytes, 0);
  if (found != magic) {
    std::string hint;
    if (found == kImagesMagic) hint = "; this is an idx3 image file, are the images and labels swapped?";
    if (found == kLabelsMagic) hint = "; this is an idx1 label file, are the images and labels swapped?";
    fail(path, "wrong magic number " + hex32(found) + " (expected " + std::to_string(magic) + " = " +
                   hex32(magic) + " for an " + kind + ")" + hint);
  }
  if (bytes.size() < header)
    fail(path, "truncated header: the file has " + std::to_string(bytes.size()) + " bytes, an " + kind +
                   " header needs " + std::to_string(header));
}

bool file_exists(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0;
}

}  // namespace

std::vector<uint8_t> read_maybe_gzip(const std::string& path) {
  std::vector<uint8_t> bytes = read_whole_file(path);
  if (bytes.empty()) fail(path, "empty file (expected an IDX file, raw or gzip-compressed)");
  if (bytes.size() >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b) return gunzip(bytes, path);
  return bytes;
}

std::vector<uint8_t> parse_idx_images(const std::vector<uint8_t>& bytes, const std::string& path, int* count) {
  check_header(bytes, path, kImagesMagic, kImagesHeader, "idx3 image file");
  uint32_t n = read_be32(bytes, 4), rows = read_be32(bytes, 8), cols = read_be32(bytes, 12);
  if (rows != kImageSide || cols != kImageSide)
    fail(path, "images are " + std::to_string(rows) + "x" + std::to_string(cols) + ", expected " +
                   std::to_string(kImageSide) + "x" + std::to_string(kImageSide) + " (header at byte offset 8)");
  uint64_t need = uint64_t{n} * kImagePixels;  // cannot overflow: n < 2^32, pixels < 2^10
  check_payload_size(bytes, path, kImagesHeader, need, declared_text(n, "images", " of 28x28", need));
  *count = static_cast<int>(n);  // n*784 <= kMaxIdxBytes, so n fits an int
  return std::vector<uint8_t>(bytes.begin() + kImagesHeader, bytes.end());
}

std::vector<uint8_t> parse_idx_labels(const std::vector<uint8_t>& bytes, const std::string& path, int* count) {
  check_header(bytes, path, kLabelsMagic, kLabelsHeader, "idx1 label file");
  uint32_t n = read_be32(bytes, 4);
  check_payload_size(bytes, path, kLabelsHeader, n, declared_text(n, "labels", "", n));
  for (size_t i = 0; i < n; ++i) {
    uint8_t label = bytes[kLabelsHeader + i];
    if (label >= kNumClasses)
      fail(path, "label " + std::to_string(label) + " at index " + std::to_string(i) + " (" +
                     offset_text(path, kLabelsHeader + i) + ") is out of range, expected 0..9");
  }
  *count = static_cast<int>(n);
  return std::vector<uint8_t>(bytes.begin() + kLabelsHeader, bytes.end());
}

ImageSet load_idx_pair(const std::string& images_path, const std::string& labels_path) {
  ImageSet set;
  int label_count = 0;
  set.images = parse_idx_images(read_maybe_gzip(images_path), images_path, &set.count);
  set.labels = parse_idx_labels(read_maybe_gzip(labels_path), labels_path, &label_count);
  if (set.count != label_count)
    throw InputError(images_path + " holds " + std::to_string(set.count) + " images but " + labels_path +
                     " holds " + std::to_string(label_count) + " labels (the counts must agree)");
  if (set.count == 0) throw InputError(images_path + ": declares 0 images (an empty dataset)");
  return set;
}

std::string find_idx_file(const std::string& dir, const std::string& stem) {
  bool images = ends_with(stem, "-images");
  CONVNET_CHECK(images || ends_with(stem, "-labels"), "stem '" + stem + "' must end in -images or -labels");
  const std::string type = images ? "idx3-ubyte" : "idx1-ubyte";
  const std::string names[] = {stem + "-" + type, stem + "-" + type + ".gz", stem + "." + type,
                               stem + "." + type + ".gz"};
  std::string tried;
  for (const std::string& name : names) {
    std::string path = join_path(dir, name);
    if (file_exists(path)) return path;
    tried += (tried.empty() ? "" : ", ") + name;
  }
  std::string where = dir.empty() ? "." : dir;
  std::string hint = file_exists(where) ? "" : " (the folder does not exist)";
  throw InputError(join_path(dir, names[1]) + ": not found; tried " + tried + " in " + where + hint +
                   "; run data/fetch_mnist.sh or pass --data DIR");
}

Dataset load_dataset(const std::string& dir, const std::string& name, Splits splits) {
  Dataset ds;
  ds.name = name;
  ds.dir = dir;
  // One statement per file: argument evaluation order is unspecified, and the first missing file
  // reported should be the first one in this list.
  const bool train = splits != Splits::TestOnly, test = splits != Splits::TrainOnly;
  const std::string train_images = train ? find_idx_file(dir, "train-images") : "";
  const std::string train_labels = train ? find_idx_file(dir, "train-labels") : "";
  const std::string test_images = test ? find_idx_file(dir, "t10k-images") : "";
  const std::string test_labels = test ? find_idx_file(dir, "t10k-labels") : "";
  if (train) ds.train = load_idx_pair(train_images, train_labels);
  if (test) ds.test = load_idx_pair(test_images, test_labels);
  return ds;
}

std::string default_data_dir(const std::string& flag_value, const std::string& dataset_name) {
  if (dataset_name != "mnist" && dataset_name != "fashion")
    throw UsageError("--dataset: unknown dataset '" + dataset_name + "' (expected mnist or fashion)");
  if (!flag_value.empty()) return flag_value;
  if (dataset_name == "fashion") return "/usr/share/datasets/fashion-mnist";
  const char* env = std::getenv("MNIST_DIR");
  if (env && *env) return env;
  return "data/mnist";
}

}  // namespace convnet
