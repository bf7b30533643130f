#pragma once

// A temporary config dir for model tests, removed on destruction.

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "gtest/gtest.h"

namespace nodemesh::model {

class TempConfigDir {
 public:
  TempConfigDir() {
    std::string tmpl = ::testing::TempDir() + "/nmconfig-XXXXXX";
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempConfigDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

  void Write(const std::string& rel, const std::string& text) const {
    std::filesystem::path p = std::filesystem::path(path_) / rel;
    std::filesystem::create_directories(p.parent_path());
    std::ofstream(p) << text;
  }
  void Remove(const std::string& rel) const {
    std::filesystem::remove(std::filesystem::path(path_) / rel);
  }

 private:
  std::string path_;
};

}  // namespace nodemesh::model
