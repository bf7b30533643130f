// The model source in cluster mode: model files kept in an external store
// (etcd keys), fed in as changes with revisions, and the App Mesh API's
// writes committed there with compare-and-swap.

#include <string>
#include <vector>

#include "agent/model/model_source.h"
#include "gtest/gtest.h"
#include "tests/unit/model/model_test_util.h"

namespace nodemesh::model {
namespace {

using Change = ModelSource::ExternalChange;

constexpr char kMesh[] = R"({"meshName": "shop", "spec": {}})";

std::string Node(const std::string& name, int port) {
  return R"({"meshName": "shop", "virtualNodeName": ")" + name +
         R"(", "spec": {"listeners": [{"portMapping": {"port": )" +
         std::to_string(port) + R"(, "protocol": "http"}}]}})";
}

int PortOf(const Snapshot& s, const std::string& vn) {
  auto it = s.resources.find(
      ResourceIdView(ResourceKind::kVirtualNode, "shop", "", vn));
  if (it == s.resources.end()) return -1;
  return static_cast<int>(std::get<VirtualNodeSpec>(it->second->spec)
                              .listeners[0]
                              .port_mapping.port);
}

struct Fixture {
  TempConfigDir dir;
  std::unique_ptr<net::EventLoop> loop = *net::EventLoop::Create();
  ModelSource model{loop.get(), dir.path()};
  std::vector<std::vector<ModelSource::ExternalWrite>> commits;
  absl::StatusOr<int64_t> next_commit = 100;

  Fixture() {
    model.UseExternal("api/", [this](const auto& writes) {
      commits.push_back(writes);
      return next_commit;
    });
  }
};

TEST(ModelSourceExternalTest, StoreFilesAreTheModelAndShadowTheDirsApiFolder) {
  Fixture f;
  f.dir.Write("api/shop/VirtualNode/stale.json", Node("stale", 1));
  f.dir.Write("local.json", kMesh);
  ASSERT_TRUE(f.model.Start().ok());
  f.model.ApplyExternal(
      {{"api/shop/VirtualNode/a.json", "/k/a", 5, Node("a", 8080)}}, true, 7);
  auto snap = f.model.current();
  EXPECT_EQ(PortOf(*snap, "a"), 8080);
  EXPECT_EQ(PortOf(*snap, "stale"), -1);  // the dir's api/ is not the model
  EXPECT_EQ(f.model.ReadModelFile("api/shop/VirtualNode/a.json"),
            Node("a", 8080));
  EXPECT_EQ(f.model.ReadModelFile("local.json"), std::string(kMesh));
}

TEST(ModelSourceExternalTest, ApiWritesCommitWithTheRevisionTheyRead) {
  Fixture f;
  ASSERT_TRUE(f.model.Start().ok());
  f.model.ApplyExternal({{"api/shop/Mesh/shop.json", "/k/mesh", 3, kMesh}},
                        true, 3);
  // A new resource: the store must not hold the key yet (revision 0).
  auto r = f.model.Apply({{"api/shop/VirtualNode/a.json", Node("a", 1)}});
  ASSERT_NE(r.snapshot, nullptr);
  ASSERT_EQ(f.commits.size(), 1u);
  EXPECT_EQ(f.commits[0][0].expected_revision, 0);
  EXPECT_EQ(f.commits[0][0].key, "");
  EXPECT_EQ(PortOf(*f.model.current(), "a"), 1);
  uint64_t version = f.model.current()->version;

  // The store echoes the commit: nothing to do.
  f.model.ApplyExternal(
      {{"api/shop/VirtualNode/a.json", "/k/a", 100, Node("a", 1)}}, false);
  EXPECT_EQ(f.model.current()->version, version);

  // An update compares against the revision of the commit.
  f.next_commit = 101;
  r = f.model.Apply({{"api/shop/VirtualNode/a.json", Node("a", 2)}});
  ASSERT_NE(r.snapshot, nullptr);
  EXPECT_EQ(f.commits[1][0].expected_revision, 100);
  EXPECT_EQ(PortOf(*f.model.current(), "a"), 2);

  // A lost compare-and-swap changes nothing here.
  f.next_commit = absl::AlreadyExistsError("changed meanwhile");
  r = f.model.Apply({{"api/shop/VirtualNode/a.json", Node("a", 3)}});
  EXPECT_EQ(r.snapshot, nullptr);
  EXPECT_TRUE(absl::IsAlreadyExists(r.commit_error));
  EXPECT_EQ(PortOf(*f.model.current(), "a"), 2);
  EXPECT_EQ(f.model.ReadModelFile("api/shop/VirtualNode/a.json"), Node("a", 2));

  // An invalid change is never committed.
  size_t commits = f.commits.size();
  r = f.model.Apply({{"api/shop/VirtualNode/a.json", Node("a", 99999)}});
  EXPECT_EQ(r.snapshot, nullptr);
  EXPECT_FALSE(r.errors.empty());
  EXPECT_EQ(f.commits.size(), commits);
}

TEST(ModelSourceExternalTest, OlderChangesThanWhatItHoldsAreIgnored) {
  Fixture f;
  ASSERT_TRUE(f.model.Start().ok());
  f.model.ApplyExternal({{"api/m.json", "/k/m", 3, kMesh},
                         {"api/a.json", "/k/a", 4, Node("a", 1)}},
                        true, 4);
  // Deleted by this agent at 100; a put of revision 50 still on its way
  // must not bring it back.
  auto r = f.model.Apply({{"api/a.json", std::nullopt}});
  ASSERT_NE(r.snapshot, nullptr);
  EXPECT_EQ(PortOf(*f.model.current(), "a"), -1);
  f.model.ApplyExternal({{"api/a.json", "/k/a", 50, Node("a", 5)}}, false);
  EXPECT_EQ(PortOf(*f.model.current(), "a"), -1);
  // A later one (created again elsewhere) does.
  f.model.ApplyExternal({{"api/a.json", "/k/a", 120, Node("a", 6)}}, false);
  EXPECT_EQ(PortOf(*f.model.current(), "a"), 6);
  // And an older put of a key it holds at a newer revision is stale too.
  f.model.ApplyExternal({{"api/a.json", "/k/a", 110, Node("a", 7)}}, false);
  EXPECT_EQ(PortOf(*f.model.current(), "a"), 6);
}

TEST(ModelSourceExternalTest, AListReplacesEverythingItDoesNotHold) {
  Fixture f;
  ASSERT_TRUE(f.model.Start().ok());
  f.model.ApplyExternal({{"api/m.json", "/k/m", 3, kMesh},
                         {"api/a.json", "/k/a", 4, Node("a", 1)},
                         {"api/b.json", "/k/b", 5, Node("b", 2)}},
                        true, 5);
  ASSERT_EQ(PortOf(*f.model.current(), "b"), 2);
  // After a compaction the watcher lists again: b was deleted meanwhile.
  f.model.ApplyExternal({{"api/m.json", "/k/m", 3, kMesh},
                         {"api/a.json", "/k/a", 9, Node("a", 3)}},
                        true, 20);
  EXPECT_EQ(PortOf(*f.model.current(), "a"), 3);
  EXPECT_EQ(PortOf(*f.model.current(), "b"), -1);
  EXPECT_EQ(f.model.external_files(), 2u);
}

TEST(ModelSourceExternalTest, AListBehindWhatItHoldsIsTheWholeTruth) {
  Fixture f;
  ASSERT_TRUE(f.model.Start().ok());
  f.model.ApplyExternal({{"api/m.json", "/k/m", 300, kMesh},
                         {"api/a.json", "/k/a", 400, Node("a", 1)}},
                        true, 400);
  // etcd rebuilt from nothing: its revisions start again.
  f.model.ApplyExternal({{"api/m.json", "/k/m", 2, kMesh},
                         {"api/a.json", "/k/a", 3, Node("a", 2)}},
                        true, 3);
  EXPECT_EQ(PortOf(*f.model.current(), "a"), 2);
  f.model.ApplyExternal({{"api/a.json", "/k/a", 4, Node("a", 3)}}, false);
  EXPECT_EQ(PortOf(*f.model.current(), "a"), 3);
}

TEST(ModelSourceExternalTest, AnInvalidKeyKeepsTheLastGoodSnapshot) {
  Fixture f;
  ASSERT_TRUE(f.model.Start().ok());
  f.model.ApplyExternal({{"api/m.json", "/k/m", 3, kMesh},
                         {"api/a.json", "/k/a", 4, Node("a", 1)}},
                        true, 4);
  uint64_t version = f.model.current()->version;
  f.model.ApplyExternal({{"api/a.json", "/k/a", 6, Node("a", 99999)}}, false);
  EXPECT_EQ(f.model.current()->version, version);
  EXPECT_EQ(PortOf(*f.model.current(), "a"), 1);
  EXPECT_NE(f.model.status().last_error.find("api/a.json"), std::string::npos)
      << f.model.status().last_error;
  // Fixed by the next write: served.
  f.model.ApplyExternal({{"api/a.json", "/k/a", 7, Node("a", 2)}}, false);
  EXPECT_EQ(PortOf(*f.model.current(), "a"), 2);
}

TEST(ModelSourceExternalTest, YamlKeysAreReadAsYaml) {
  Fixture f;
  ASSERT_TRUE(f.model.Start().ok());
  f.model.ApplyExternal(
      {{"api/crd.yaml", "/k/crd.yaml", 4,
        "apiVersion: appmesh.k8s.aws/v1beta2\nkind: VirtualNode\nmetadata:\n"
        "  name: y\n  namespace: shop\nspec:\n  meshRef:\n    name: shop\n"
        "  listeners:\n  - portMapping:\n      port: 9090\n      protocol: "
        "http\n"}},
      true, 4);
  // The controller's naming: <name>_<namespace>.
  EXPECT_EQ(PortOf(*f.model.current(), "y_shop"), 9090)
      << f.model.status().last_error;
}

}  // namespace
}  // namespace nodemesh::model
