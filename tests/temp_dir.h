// TempDir: a fresh folder under /tmp for one test, removed with everything in it at the end.
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

namespace convnet::test {

class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "convnet_test") {
    std::string templ = "/tmp/" + prefix + "_XXXXXX";
    const char* made = mkdtemp(templ.data());
    if (!made) throw std::runtime_error("mkdtemp failed for " + templ);
    path_ = made;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  std::string file(const std::string& name) const { return path_ + "/" + name; }
  const std::string& path() const { return path_; }

  // Names of everything in the folder.
  std::vector<std::string> entries() const {
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(path_)) names.push_back(e.path().filename());
    return names;
  }

 private:
  std::string path_;
};

}  // namespace convnet::test
