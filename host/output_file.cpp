// Checks of the files a command writes; see output_file.h for the rules on links and special files.
#include "output_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "errors.h"

namespace convnet {
namespace {

namespace fs = std::filesystem;

constexpr int kMaxLinks = 40;  // as the kernel's ELOOP limit

std::string folder_of(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

// "PATH" or, through a link, "PATH (a link to TARGET)".
std::string shown(const std::string& path, const std::string& target) {
  return target == path ? path : path + " (a link to " + target + ")";
}

// "" when the first bytes of an existing log file may be appended to, else why not.
std::string log_problem(const std::string& target) {
  const int fd = open(target.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::string("cannot read it: ") + std::strerror(errno);
  unsigned char head[4096];
  const ssize_t n = read(fd, head, sizeof head);
  close(fd);
  if (n < 0) return std::string("cannot read it: ") + std::strerror(errno);
  if (n == 0) return "";
  if (head[0] != '{') return "is not empty and not a JSON-lines training log (it does not start with '{')";
  for (ssize_t i = 0; i < n; ++i)
    if (head[i] < 0x20 && head[i] != '\n' && head[i] != '\r' && head[i] != '\t')
      return "is not a JSON-lines training log (binary byte at offset " + std::to_string(i) + ")";
  return "";
}

// 0 when a new file can be created in dir (one is created and removed), else the errno.
int folder_refuses_files(const std::string& dir) {
  std::string probe = dir + "/.convnet-write-test.XXXXXX";
  const int fd = mkstemp(probe.data());
  if (fd < 0) return errno;
  close(fd);
  unlink(probe.c_str());
  return 0;
}

}  // namespace

std::string output_target(const std::string& path) {
  std::string p = path;
  for (int hop = 0; hop < kMaxLinks; ++hop) {
    // /proc's links (/dev/stdout, /dev/fd/N lead there) name open files, not paths: the kernel
    // follows them itself.
    if (p.rfind("/proc/", 0) == 0) return p;
    struct stat st {};
    if (lstat(p.c_str(), &st) != 0 || !S_ISLNK(st.st_mode)) return p;
    std::error_code ec;
    const fs::path to = fs::read_symlink(p, ec);
    if (ec) return p;
    // Relative to the link's folder, left for the kernel to resolve: "dir/../x" is not "x" when dir
    // is itself a link, so no lexical normalisation.
    p = to.is_absolute() ? to.string() : folder_of(p) + "/" + to.string();
  }
  return p;  // a loop of links: the write fails with ELOOP and says so
}

std::string special_file_problem(const std::string& target) {
  struct stat st {};
  if (stat(target.c_str(), &st) != 0)  // absent; a loop of links would have the rename replace the last link
    return errno == ELOOP ? "is a loop of symbolic links, not a regular file" : "";
  if (S_ISREG(st.st_mode)) return "";
  if (S_ISDIR(st.st_mode)) return "is a directory, expected a file name";
  const char* kind = S_ISCHR(st.st_mode)    ? "a character device"
                     : S_ISBLK(st.st_mode)  ? "a block device"
                     : S_ISFIFO(st.st_mode) ? "a FIFO"
                     : S_ISSOCK(st.st_mode) ? "a socket"
                                            : "a special file";
  return std::string("is ") + kind + ", not a regular file (convnet writes a new file and renames it over the path)";
}

void check_output_folder(const std::string& flag, const std::string& dir) {
  if (const int err = folder_refuses_files(dir.empty() ? "." : dir))
    throw UsageError("--" + flag + ": cannot create a file in " + dir + ": " + std::strerror(err));
}

void check_output_file(const std::string& flag, const std::string& path) {
  const std::string target = output_target(path);
  const std::string problem = special_file_problem(target);
  if (!problem.empty()) throw UsageError("--" + flag + ": " + shown(path, target) + " " + problem);
  const std::string dir = folder_of(target);
  struct stat st {};
  if (stat(dir.c_str(), &st) != 0)
    throw UsageError("--" + flag + ": cannot write " + shown(path, target) + ": " + dir + ": " + std::strerror(errno));
  if (!S_ISDIR(st.st_mode))
    throw UsageError("--" + flag + ": cannot write " + shown(path, target) + ": " + dir + " is not a directory");
  if (const int err = folder_refuses_files(dir))
    throw UsageError("--" + flag + ": cannot write " + shown(path, target) + ": " + dir + ": " + std::strerror(err));
}

void check_log_file(const std::string& flag, const std::string& path) {
  // The log is appended to through the path itself (O_APPEND follows links, /proc's included), never
  // renamed over, so what check_output_file refuses for a replaced file does not apply to a present one.
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) {
    if (errno == ELOOP) throw UsageError("--" + flag + ": " + path + " is a loop of symbolic links");
    check_output_file(flag, path);  // a new file: its folder must take it
    return;
  }
  if (S_ISDIR(st.st_mode)) throw UsageError("--" + flag + ": " + path + " is a directory, expected a file name");
  const bool fifo = S_ISFIFO(st.st_mode);
  // A FIFO without a reader would block the open until one comes: refuse it rather than hang.
  const int fd = open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC | (fifo ? O_NONBLOCK : 0));
  if (fd < 0)
    throw UsageError("--" + flag + ": cannot append to " + path + ": " +
                     (fifo && errno == ENXIO ? "a FIFO with no reader" : std::strerror(errno)));
  close(fd);
  if (!S_ISREG(st.st_mode) || st.st_size == 0) return;  // /dev/null, a terminal, a pipe: as they are
  const std::string problem = log_problem(path);
  if (!problem.empty()) throw UsageError("--" + flag + ": " + path + " " + problem + "; appending would ruin it");
}

bool same_output_file(const std::string& a, const std::string& b) {
  auto key = [](const std::string& path) {  // weakly_canonical leaves a relative path relative
    std::error_code ec;
    const fs::path abs = fs::absolute(output_target(path), ec);
    if (ec) return fs::path(path).lexically_normal().string();
    const fs::path k = fs::weakly_canonical(abs, ec);
    return (ec ? abs : k).lexically_normal().string();
  };
  return key(a) == key(b);
}

void refuse_same_output(const std::vector<std::pair<std::string, std::string>>& outputs, const std::string& note) {
  for (size_t i = 0; i < outputs.size(); ++i)
    for (size_t j = i + 1; j < outputs.size(); ++j) {
      const auto& [a, pa] = outputs[i];
      const auto& [b, pb] = outputs[j];
      if (pa.empty() || pb.empty() || !same_output_file(pa, pb)) continue;
      throw UsageError("--" + a + " and --" + b + " name the same file (" + pa + (pa == pb ? "" : ", " + pb) +
                       "); each needs its own" + note);
    }
}

}  // namespace convnet
