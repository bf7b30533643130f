// Real App Mesh specs (../shared/appmesh-examples, INDEX.md says what each
// file is) must load: each walkthrough's Kubernetes manifests as one state,
// each CLI JSON input as a spec of its kind.

#include "tests/unit/model/appmesh_examples.h"

#include <filesystem>
#include <string>

#include "agent/model/snapshot.h"
#include "gtest/gtest.h"
#include "tests/unit/model/model_test_util.h"

namespace nodemesh::model {
namespace {

namespace fs = std::filesystem;

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
  auto groups = GroupWalkthroughs(rows_);
  ASSERT_GT(groups.size(), 10u);
  for (const auto& [group, files] : groups) {
    TempConfigDir dir;
    WriteWalkthrough(group, files, dir);
    auto r = SnapshotBuilder(dir.path()).Build(nullptr);
    EXPECT_NE(r.snapshot, nullptr) << group << "\n" << Errors(r);
    if (r.snapshot) {
      EXPECT_GT(r.snapshot->resources.size(), 0u) << group;
    }
  }
}

}  // namespace
}  // namespace nodemesh::model
