#pragma once
// A temporary directory for a test, removed with everything in it.

#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

namespace zm::testutil {

class TempDir {
 public:
  explicit TempDir(std::string_view prefix = "zmesh-test") {
    std::string tmpl =
        (std::filesystem::temp_directory_path() / (std::string(prefix) + "-XXXXXX")).string();
    if (::mkdtemp(tmpl.data()) == nullptr) std::abort();
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string File(std::string_view name) const { return path_ + "/" + std::string(name); }
  // Writes `content` to `name` (truncating); returns the path.
  std::string Write(std::string_view name, std::string_view content) const {
    std::string path = File(name);
    std::ofstream(path, std::ios::trunc) << content;
    return path;
  }

 private:
  std::string path_;
};

}  // namespace zm::testutil
