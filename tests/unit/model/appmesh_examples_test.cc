// Real App Mesh specs (../shared/appmesh-examples, INDEX.md says what each
// file is) must load: each walkthrough's Kubernetes manifests as one state,
// each CLI JSON input as a spec of its kind.

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "agent/model/snapshot.h"
#include "gtest/gtest.h"
#include "tests/unit/model/model_test_util.h"

namespace nodemesh::model {
namespace {

namespace fs = std::filesystem;

struct IndexRow {
  std::string path, format, resources;
};

std::vector<IndexRow> ReadIndex() {
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

std::string Errors(const SnapshotBuilder::Result& r) {
  std::string out;
  for (const auto& d : r.diagnostics.items())
    if (d.severity == Diagnostic::Severity::kError) out += d.ToString() + "\n";
  return out;
}

class AppMeshExamplesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(NODEMESH_EXAMPLES_DIR))
      GTEST_SKIP() << "no " << NODEMESH_EXAMPLES_DIR;
    rows_ = ReadIndex();
    ASSERT_GT(rows_.size(), 100u) << "INDEX.md did not parse";
  }
  std::vector<IndexRow> rows_;
};

TEST_F(AppMeshExamplesTest, EachCliJsonInputValidatesAsItsKind) {
  int checked = 0;
  for (const auto& row : rows_) {
    if (row.format != "cli-json") continue;
    std::string kind_text = row.resources;
    kind_text.erase(kind_text.find_last_not_of(' ') + 1);
    auto kind = KindFromName(kind_text);
    ASSERT_TRUE(kind.has_value()) << row.path << ": kind " << kind_text;
    fs::path file = fs::path(NODEMESH_EXAMPLES_DIR) / row.path;
    SnapshotBuilder builder(file.parent_path().string(), *kind);
    auto r = builder.BuildFiles({file.filename().string()}, nullptr);
    EXPECT_NE(r.snapshot, nullptr) << row.path << "\n" << Errors(r);
    ++checked;
  }
  EXPECT_EQ(checked, 87);
}

TEST_F(AppMeshExamplesTest, EachWalkthroughsManifestsValidateAsOneState) {
  // Group the Kubernetes files by walkthrough (or blog) directory.
  std::map<std::string, std::vector<std::string>> groups;
  for (const auto& row : rows_) {
    if (row.format != "k8s") continue;
    fs::path p(row.path);
    auto it = p.begin();
    std::string group = it->string();
    if (++it != p.end()) group += "/" + it->string();
    groups[group].push_back(row.path);
  }
  ASSERT_GT(groups.size(), 10u);
  for (const auto& [group, files] : groups) {
    TempConfigDir dir;
    std::vector<std::string> names;
    for (const auto& f : files) {
      std::string rel = f.substr(group.size() + 1);
      // A `.yaml.template` is plain YAML: copy it under a `.yaml` name.
      if (rel.size() > 14 && rel.substr(rel.size() - 14) == ".yaml.template")
        rel = rel.substr(0, rel.size() - 9);
      std::ifstream in(fs::path(NODEMESH_EXAMPLES_DIR) / f);
      std::stringstream text;
      text << in.rdbuf();
      dir.Write(rel, text.str());
    }
    auto r = SnapshotBuilder(dir.path()).Build(nullptr);
    EXPECT_NE(r.snapshot, nullptr) << group << "\n" << Errors(r);
    if (r.snapshot) {
      EXPECT_GT(r.snapshot->resources.size(), 0u) << group;
    }
  }
}

}  // namespace
}  // namespace nodemesh::model
