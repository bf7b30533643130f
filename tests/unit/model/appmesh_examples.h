#pragma once

// Reading ../shared/appmesh-examples (INDEX.md says what each file is), for
// the tests that load or compile every real App Mesh spec.

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "tests/unit/model/model_test_util.h"

namespace nodemesh::model {

struct IndexRow {
  std::string path, format, resources;
};

inline std::vector<IndexRow> ReadIndex() {
  std::vector<IndexRow> rows;
  std::ifstream in(std::string(NODEMESH_EXAMPLES_DIR) + "/INDEX.md");
  std::string line;
  // | `path` | `source` | format | resources | features | substituted |
  std::regex row(R"(^\| `([^`]+)` \| `[^`]+` \| ([a-z0-9-]+) \| ([^|]*) \|)");
  while (std::getline(in, line)) {
    std::smatch m;
    if (std::regex_search(line, m, row)) rows.push_back({m[1], m[2], m[3]});
  }
  return rows;
}

// The Kubernetes files of INDEX.md grouped by walkthrough (or blog)
// directory: each group is one state.
inline std::map<std::string, std::vector<std::string>> GroupWalkthroughs(
    const std::vector<IndexRow>& rows) {
  std::map<std::string, std::vector<std::string>> groups;
  for (const auto& row : rows) {
    if (row.format != "k8s") continue;
    std::filesystem::path p(row.path);
    auto it = p.begin();
    std::string group = it->string();
    if (++it != p.end()) group += "/" + it->string();
    groups[group].push_back(row.path);
  }
  return groups;
}

// Copies one group's files into `dir` (a `.yaml.template` as `.yaml`).
inline void WriteWalkthrough(const std::string& group,
                             const std::vector<std::string>& files,
                             const TempConfigDir& dir) {
  for (const auto& f : files) {
    std::string rel = f.substr(group.size() + 1);
    if (rel.size() > 14 && rel.substr(rel.size() - 14) == ".yaml.template")
      rel = rel.substr(0, rel.size() - 9);
    std::ifstream in(std::filesystem::path(NODEMESH_EXAMPLES_DIR) / f);
    std::stringstream text;
    text << in.rdbuf();
    dir.Write(rel, text.str());
  }
}

}  // namespace nodemesh::model
