// Folders with a filesystem of their own for tests that need one: a small tmpfs (a full disk) and a
// folder that takes no new file even for root (a read-only tmpfs, or mode 0555 for anyone else).
#pragma once

#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>

namespace convnet::test {

// A tmpfs of `size` mounted on a fresh folder for the test's lifetime, where the system allows it.
class Tmpfs {
 public:
  explicit Tmpfs(const std::string& dir, const char* size, unsigned long flags = 0) : dir_(dir) {
    std::filesystem::create_directory(dir);
    const std::string options = std::string("size=") + size;
    if (mount("tmpfs", dir.c_str(), "tmpfs", MS_NOSUID | MS_NODEV | flags, options.c_str()) == 0)
      mounted_ = true;
    else
      why_ = std::strerror(errno);
  }
  ~Tmpfs() {
    if (mounted_) umount2(dir_.c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }
  const std::string& why() const { return why_; }

 private:
  std::string dir_, why_;
  bool mounted_ = false;
};

// A folder no file can be created in, for root too: a read-only tmpfs where mounting is allowed (root
// writes into a mode 0555 folder), else mode 0555 for anyone else. ok() false (with why()) if neither.
class ReadOnlyFolder {
 public:
  explicit ReadOnlyFolder(const std::string& dir) : dir_(dir) {
    if (geteuid() == 0) {
      tmpfs_ = std::make_unique<Tmpfs>(dir, "64k", MS_RDONLY);
      ok_ = tmpfs_->mounted();
      why_ = "running as root and cannot mount a read-only tmpfs: " + tmpfs_->why();
    } else {
      std::filesystem::create_directory(dir);
      ok_ = chmod(dir.c_str(), 0555) == 0;
      why_ = std::strerror(errno);
    }
  }
  ~ReadOnlyFolder() {
    tmpfs_.reset();
    chmod(dir_.c_str(), 0755);  // so TempDir can remove it
  }
  bool ok() const { return ok_; }
  const std::string& why() const { return why_; }

 private:
  std::string dir_, why_;
  std::unique_ptr<Tmpfs> tmpfs_;
  bool ok_ = false;
};

}  // namespace convnet::test
