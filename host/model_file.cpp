// The model file: writer and checked reader of the format documented in model_file.h (version 1).
//
//   magic "CNVNMODL" | u32 version | u32 len + arch | u32 n + n x (u32 len + key, u32 len + value)
//   | u32 n + n x (u32 len + name, u32 ndim, ndim x u64 dims, prod(dims) x f32) | u32 CRC-32
// Integers and floats are little-endian, written byte by byte so the format does not depend on the
// host. A 0-d tensor (ndim 0) holds one value: the empty product is 1.
//
// Saving builds the whole file in memory, writes it to "<path>.tmp.<pid>" in the same folder,
// flushes and fsyncs it, and renames it over the target, so a crash or a full disk never leaves a
// half-written model where a good one was. Loading reads the whole file and checks, in order: magic,
// version, every declared length against the bytes left (before allocating: a 50-byte file
// declaring a 2^40-element tensor is refused at once), dims product overflow, that exactly 4 bytes
// (the CRC) follow the last tensor, and the CRC. Errors are InputError "<path>: <what> (at byte
// offset N)".
#include "model_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <set>

#include "errors.h"
#include "output_file.h"

namespace convnet {
namespace {

constexpr char kMagic[8] = {'C', 'N', 'V', 'N', 'M', 'O', 'D', 'L'};
constexpr uint32_t kVersion = 1;
// A regular file is bounded by its size on disk; a pipe is not (devices such as /dev/zero are
// refused outright), so it is read up to this many bytes and refused beyond them instead of filling
// memory.
constexpr size_t kMaxStreamBytes = size_t{1} << 30;

uint32_t crc32_of(const uint8_t* data, size_t n) {
  return static_cast<uint32_t>(crc32_z(crc32(0L, Z_NULL, 0), data, n));
}

// ---- writing -----------------------------------------------------------------------------------

void put_u32(std::vector<uint8_t>& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

void put_u64(std::vector<uint8_t>& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

void put_string(std::vector<uint8_t>& out, const std::string& s, const std::string& what) {
  CONVNET_CHECK(s.size() <= UINT32_MAX, what + " is longer than 4 GiB");
  put_u32(out, static_cast<uint32_t>(s.size()));
  out.insert(out.end(), s.begin(), s.end());
}

void put_tensor(std::vector<uint8_t>& out, const NamedTensor& t) {
  uint64_t count = 1;
  for (uint64_t d : t.shape) CONVNET_CHECK(!__builtin_mul_overflow(count, d, &count), "tensor '" + t.name + "' dims overflow");
  CONVNET_CHECK(count == t.data.size(), "tensor '" + t.name + "' has " + std::to_string(t.data.size()) +
                                            " values but its shape holds " + std::to_string(count));
  CONVNET_CHECK(t.shape.size() <= UINT32_MAX, "tensor '" + t.name + "' has too many dims");
  put_string(out, t.name, "tensor name");
  put_u32(out, static_cast<uint32_t>(t.shape.size()));
  for (uint64_t d : t.shape) put_u64(out, d);
  for (float v : t.data) {
    uint32_t bits;
    std::memcpy(&bits, &v, 4);
    put_u32(out, bits);
  }
}

std::vector<uint8_t> serialize(const ModelFile& model) {
  std::vector<uint8_t> out(kMagic, kMagic + sizeof kMagic);
  put_u32(out, kVersion);
  put_string(out, model.arch, "arch spec");
  CONVNET_CHECK(model.metadata.size() <= UINT32_MAX && model.tensors.size() <= UINT32_MAX, "too many entries");
  put_u32(out, static_cast<uint32_t>(model.metadata.size()));
  for (const auto& [key, value] : model.metadata) {
    put_string(out, key, "metadata key");
    put_string(out, value, "metadata value");
  }
  put_u32(out, static_cast<uint32_t>(model.tensors.size()));
  std::set<std::string> names;
  for (const NamedTensor& t : model.tensors) {
    CONVNET_CHECK(names.insert(t.name).second, "duplicate tensor name '" + t.name + "'");
    put_tensor(out, t);
  }
  put_u32(out, crc32_of(out.data(), out.size()));
  return out;
}

// Writes all of bytes to the temporary file and makes it durable; returns "" or what failed.
std::string write_durably(const std::string& tmp, const std::vector<uint8_t>& bytes) {
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) return "cannot create temporary file " + tmp + ": " + std::strerror(errno);
  std::string error;
  if (std::fwrite(bytes.data(), 1, bytes.size(), f) != bytes.size() || std::fflush(f) != 0)
    error = "cannot write " + tmp + ": " + std::strerror(errno);
  else if (fsync(fileno(f)) != 0)
    error = "cannot fsync " + tmp + ": " + std::strerror(errno);
  if (std::fclose(f) != 0 && error.empty()) error = "cannot close " + tmp + ": " + std::strerror(errno);
  return error;
}

std::string parent_dir(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

// ---- reading -----------------------------------------------------------------------------------

// Bounds-checked little-endian cursor over the whole file; every read names what it reads.
class Reader {
 public:
  Reader(const std::vector<uint8_t>& bytes, const std::string& path) : b_(bytes), path_(path) {}

  [[noreturn]] void fail(const std::string& what, size_t at) const {
    throw InputError(path_ + ": " + what + " (at byte offset " + std::to_string(at) + ")");
  }
  size_t pos() const { return pos_; }
  void skip(size_t n) { pos_ += n; }  // caller has checked n <= left()
  size_t left() const { return b_.size() - pos_; }

  void need(uint64_t n, const std::string& what) const {
    if (n > left())
      fail("truncated: " + what + " needs " + std::to_string(n) + " bytes but only " + std::to_string(left()) +
               " remain",
           pos_);
  }
  uint32_t u32(const std::string& what) {
    need(4, what);
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= uint32_t{b_[pos_ + i]} << (8 * i);
    pos_ += 4;
    return v;
  }
  uint64_t u64(const std::string& what) {
    need(8, what);
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= uint64_t{b_[pos_ + i]} << (8 * i);
    pos_ += 8;
    return v;
  }
  std::string str(const std::string& what) {
    size_t at = pos_;
    uint32_t n = u32(what + " length");
    if (n > left())
      fail(what + " declares " + std::to_string(n) + " bytes but only " + std::to_string(left()) + " remain", at);
    std::string s(reinterpret_cast<const char*>(b_.data() + pos_), n);
    pos_ += n;
    return s;
  }
  float f32() {  // unchecked: read_tensor checked count * 4 <= left() first
    uint32_t bits = 0;
    for (int i = 0; i < 4; ++i) bits |= uint32_t{b_[pos_ + i]} << (8 * i);
    pos_ += 4;
    float v;
    std::memcpy(&v, &bits, 4);
    return v;
  }

 private:
  const std::vector<uint8_t>& b_;
  const std::string& path_;
  size_t pos_ = 0;
};

// A count of entries each at least min_entry bytes long must fit in what is left.
uint32_t read_count(Reader& r, const std::string& what, size_t min_entry) {
  size_t at = r.pos();
  uint32_t n = r.u32(what + " count");
  if (n > r.left() / min_entry)
    r.fail(what + " count " + std::to_string(n) + " cannot fit in the " + std::to_string(r.left()) +
               " bytes that remain",
           at);
  return n;
}

NamedTensor read_tensor(Reader& r, uint32_t index) {
  NamedTensor t;
  t.name = r.str("tensor " + std::to_string(index) + " name");
  const std::string what = "tensor '" + t.name + "'";
  size_t at = r.pos();
  uint32_t ndim = r.u32(what + " ndim");
  if (ndim > r.left() / 8)
    r.fail(what + " declares " + std::to_string(ndim) + " dims but only " + std::to_string(r.left()) +
               " bytes remain",
           at);
  uint64_t count = 1;
  bool overflow = false;
  for (uint32_t i = 0; i < ndim; ++i) {
    t.shape.push_back(r.u64(what + " dim"));
    overflow = overflow || __builtin_mul_overflow(count, t.shape.back(), &count);
  }
  if (overflow) r.fail(what + " dims product overflows 64 bits", at);
  if (count > r.left() / 4)
    r.fail(what + " declares " + std::to_string(count) + " float values (" + std::to_string(count) +
               " x 4 bytes) but only " + std::to_string(r.left()) + " bytes remain",
           r.pos());
  t.data.resize(count);
  for (float& v : t.data) v = r.f32();
  return t;
}

std::vector<uint8_t> read_model_bytes(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0)
    throw InputError(path + ": cannot open model file: " + std::strerror(errno));
  if (S_ISDIR(st.st_mode)) throw InputError(path + ": cannot read model file: is a directory");
  if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode))
    throw InputError(path + ": cannot read model file: is a device, expected a file");
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) throw InputError(path + ": cannot open model file: " + std::strerror(errno));
  std::vector<uint8_t> bytes;
  uint8_t chunk[1 << 16];
  size_t n;
  bool too_long = false;
  while (!too_long && (n = std::fread(chunk, 1, sizeof chunk, f)) > 0) {
    bytes.insert(bytes.end(), chunk, chunk + n);
    too_long = !S_ISREG(st.st_mode) && bytes.size() > kMaxStreamBytes;
  }
  int read_errno = std::ferror(f) ? errno : 0;
  std::fclose(f);
  if (read_errno != 0) throw InputError(path + ": cannot read model file: " + std::strerror(read_errno));
  if (too_long)
    throw InputError(path + ": not a regular file and more than " + std::to_string(kMaxStreamBytes >> 20) +
                     " MiB long (a model file from a pipe is read up to that limit)");
  return bytes;
}

}  // namespace

const NamedTensor* ModelFile::find(const std::string& name) const {
  for (const NamedTensor& t : tensors)
    if (t.name == name) return &t;
  return nullptr;
}

std::string ModelFile::meta(const std::string& key, const std::string& fallback) const {
  for (const auto& [k, v] : metadata)
    if (k == key) return v;
  return fallback;
}

void save_model_file(const std::string& path, const ModelFile& model) {
  const std::vector<uint8_t> bytes = serialize(model);
  // Through a symbolic link to the file it names; never over a device or FIFO (output_file.h).
  const std::string target = output_target(path);
  if (const std::string problem = special_file_problem(target); !problem.empty())
    throw InputError(path + ": cannot save model file: " + target + " " + problem);
  const std::string tmp = target + ".tmp." + std::to_string(getpid());
  std::string error = write_durably(tmp, bytes);
  if (error.empty() && std::rename(tmp.c_str(), target.c_str()) != 0)
    error = "cannot rename " + tmp + " to " + target + ": " + std::strerror(errno);
  if (!error.empty()) {
    std::remove(tmp.c_str());
    throw InputError(path + ": cannot save model file: " + error);
  }
  // Make the rename itself durable; a folder that cannot be fsynced (some filesystems) is not an
  // error, the data is already safely in the file.
  int dir_fd = open(parent_dir(target).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    (void)fsync(dir_fd);
    close(dir_fd);
  }
}

ModelFile load_model_file(const std::string& path) {
  const std::vector<uint8_t> bytes = read_model_bytes(path);
  Reader r(bytes, path);
  if (bytes.empty()) r.fail("empty file, expected a convnet model file", 0);
  if (bytes.size() < sizeof kMagic || std::memcmp(bytes.data(), kMagic, sizeof kMagic) != 0)
    r.fail("not a convnet model file (wrong magic, expected \"CNVNMODL\")", 0);
  r.skip(sizeof kMagic);
  uint32_t version = r.u32("version");
  if (version != kVersion)
    r.fail("unsupported model file version " + std::to_string(version) + " (this build reads version " +
               std::to_string(kVersion) + ")",
           sizeof kMagic);
  ModelFile model;
  model.arch = r.str("arch spec");
  uint32_t n_meta = read_count(r, "metadata", 8);
  for (uint32_t i = 0; i < n_meta; ++i) {
    std::string key = r.str("metadata key " + std::to_string(i));
    model.metadata.emplace_back(key, r.str("metadata value '" + key + "'"));
  }
  uint32_t n_tensors = read_count(r, "tensor", 8);
  std::set<std::string> names;
  for (uint32_t i = 0; i < n_tensors; ++i) {
    size_t at = r.pos();
    model.tensors.push_back(read_tensor(r, i));
    if (!names.insert(model.tensors.back().name).second)
      r.fail("duplicate tensor name '" + model.tensors.back().name + "'", at);
  }
  size_t crc_at = r.pos();
  uint32_t stored = r.u32("checksum");
  if (r.left() > 0)
    r.fail(std::to_string(r.left()) + " trailing bytes after the checksum", r.pos());
  if (stored != crc32_of(bytes.data(), crc_at))
    r.fail("checksum mismatch: file is corrupted", crc_at);
  return model;
}

}  // namespace convnet
