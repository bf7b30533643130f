#include "agent/model/snapshot.h"

#include <set>

#include "gtest/gtest.h"
#include "tests/unit/model/model_test_util.h"

namespace nodemesh::model {
namespace {

// A small valid mesh in the create-* shape: a router with a weighted route
// over two nodes, a service on the router, and a client node.
constexpr char kMesh[] = R"({"meshName": "shop", "spec": {}})";
constexpr char kNodes[] = R"([
 {"meshName": "shop", "virtualNodeName": "blue",
  "spec": {"listeners": [{"portMapping": {"port": 8080, "protocol": "http"}}],
           "serviceDiscovery": {"dns": {"hostname": "blue.shop.local"}}}},
 {"meshName": "shop", "virtualNodeName": "green",
  "spec": {"listeners": [{"portMapping": {"port": 8080, "protocol": "http"}}],
           "serviceDiscovery": {"dns": {"hostname": "green.shop.local"}}}},
 {"meshName": "shop", "virtualNodeName": "front",
  "spec": {"backends": [{"virtualService": {"virtualServiceName": "color.shop.local"}}]}}
])";
constexpr char kRouter[] = R"({"virtualRouter": {"meshName": "shop",
  "virtualRouterName": "color",
  "spec": {"listeners": [{"portMapping": {"port": 8080, "protocol": "http"}}]},
  "metadata": {"version": 3}, "status": {"status": "ACTIVE"}}})";
constexpr char kRoute[] = R"({"meshName": "shop", "virtualRouterName": "color",
  "routeName": "split", "spec": {"httpRoute": {"match": {"prefix": "/"},
  "action": {"weightedTargets": [{"virtualNode": "blue", "weight": 80},
                                 {"virtualNode": "green", "weight": 20}]}}}})";
constexpr char kService[] = R"({"meshName": "shop",
  "virtualServiceName": "color.shop.local",
  "spec": {"provider": {"virtualRouter": {"virtualRouterName": "color"}}}})";

void WriteValidMesh(const TempConfigDir& dir) {
  dir.Write("mesh.json", kMesh);
  dir.Write("nodes.json", kNodes);
  dir.Write("router/color.json", kRouter);
  dir.Write("router/split.json", kRoute);
  dir.Write("service.json", kService);
}

const Diagnostic* FirstError(const SnapshotBuilder::Result& r) {
  for (const auto& d : r.diagnostics.items())
    if (d.severity == Diagnostic::Severity::kError) return &d;
  return nullptr;
}

TEST(SnapshotTest, ValidMeshInEveryApiShapeLoads) {
  TempConfigDir dir;
  WriteValidMesh(dir);
  SnapshotBuilder builder(dir.path());
  auto r = builder.Build(nullptr);
  ASSERT_NE(r.snapshot, nullptr) << FirstError(r)->ToString();
  EXPECT_EQ(r.snapshot->resources.size(), 7u);
  EXPECT_EQ(r.snapshot->version, 1u);
  EXPECT_TRUE(r.snapshot->resources.count(
      {ResourceKind::kRoute, "shop", "color", "split"}));
}

TEST(SnapshotTest, UnchangedFilesAreNotParsedAgain) {
  TempConfigDir dir;
  WriteValidMesh(dir);
  SnapshotBuilder builder(dir.path());
  auto first = builder.Build(nullptr);
  ASSERT_NE(first.snapshot, nullptr);
  dir.Write("router/split.json",
            std::string(kRoute)
                .replace(std::string(kRoute).find("80"), 2, "70")
                .replace(std::string(kRoute).find("20"), 2, "30"));
  auto second = builder.Build(first.snapshot.get());
  ASSERT_NE(second.snapshot, nullptr) << FirstError(second)->ToString();
  EXPECT_EQ(second.stats.files_read, 1u);
  EXPECT_EQ(second.stats.resources_decoded, 1u);
  EXPECT_EQ(second.snapshot->version, 2u);
  EXPECT_NE(second.snapshot->hash, first.snapshot->hash);
  // Unchanged resources are shared, not copied.
  ResourceId blue{ResourceKind::kVirtualNode, "shop", "", "blue"};
  EXPECT_EQ(first.snapshot->resources.at(blue).get(),
            second.snapshot->resources.at(blue).get());
}

TEST(SnapshotTest, UnresolvedReferenceNamesFileResourceAndField) {
  TempConfigDir dir;
  WriteValidMesh(dir);
  dir.Write("router/split.json",
            std::string(kRoute).replace(std::string(kRoute).find("\"green\""),
                                        7, "\"grey\""));
  auto r = SnapshotBuilder(dir.path()).Build(nullptr);
  ASSERT_EQ(r.snapshot, nullptr);
  const Diagnostic* e = FirstError(r);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->where.file, "router/split.json");
  EXPECT_EQ(e->resource, "Route shop/color/split");
  EXPECT_EQ(e->field_path,
            "spec.httpRoute.action.weightedTargets[1].virtualNode");
  EXPECT_NE(e->message.find("grey"), std::string::npos);
}

TEST(SnapshotTest, RouteToNodeListeningWithAnotherProtocolIsAnError) {
  TempConfigDir dir;
  WriteValidMesh(dir);
  std::string nodes = kNodes;
  nodes.replace(nodes.find("\"http\""), 6, "\"grpc\"");  // blue speaks grpc
  dir.Write("nodes.json", nodes);
  auto r = SnapshotBuilder(dir.path()).Build(nullptr);
  ASSERT_EQ(r.snapshot, nullptr);
  EXPECT_EQ(FirstError(r)->field_path,
            "spec.httpRoute.action.weightedTargets[0]");
  EXPECT_NE(FirstError(r)->message.find("grpc"), std::string::npos);
}

TEST(SnapshotTest, MissingRouterAndProviderAndBackendAreErrors) {
  TempConfigDir dir;
  WriteValidMesh(dir);
  dir.Remove("router/color.json");
  auto r = SnapshotBuilder(dir.path()).Build(nullptr);
  ASSERT_EQ(r.snapshot, nullptr);
  std::set<std::string> fields;
  for (const auto& d : r.diagnostics.items())
    if (d.severity == Diagnostic::Severity::kError) fields.insert(d.field_path);
  EXPECT_TRUE(fields.count("virtualRouterName"));
  EXPECT_TRUE(fields.count("spec.provider.virtualRouter.virtualRouterName"));
}

TEST(SnapshotTest, UnknownBackendWarnsAsInAppMesh) {
  // App Mesh accepts a backend that names no service (yet): it may be
  // defined later or in another cluster. A warning, with its field.
  TempConfigDir dir;
  WriteValidMesh(dir);
  dir.Write("nodes.json", std::string(kNodes).replace(
                              std::string(kNodes).find("color.shop.local"), 16,
                              "other.shop.local"));
  auto r = SnapshotBuilder(dir.path()).Build(nullptr);
  ASSERT_NE(r.snapshot, nullptr) << FirstError(r)->ToString();
  bool warned = false;
  for (const auto& d : r.snapshot->warnings)
    warned |=
        d.field_path == "spec.backends[0].virtualService.virtualServiceName";
  EXPECT_TRUE(warned);
}

TEST(SnapshotTest, DuplicateDefinitionNamesBothPlaces) {
  TempConfigDir dir;
  WriteValidMesh(dir);
  dir.Write("again.json", kService);
  auto r = SnapshotBuilder(dir.path()).Build(nullptr);
  ASSERT_EQ(r.snapshot, nullptr);
  EXPECT_NE(FirstError(r)->message.find("defined twice"), std::string::npos);
  EXPECT_NE(FirstError(r)->message.find("again.json"), std::string::npos);
}

TEST(SnapshotTest, MissingMeshIsCreatedImplicitlyWithAWarning) {
  TempConfigDir dir;
  WriteValidMesh(dir);
  dir.Remove("mesh.json");
  auto r = SnapshotBuilder(dir.path()).Build(nullptr);
  ASSERT_NE(r.snapshot, nullptr);
  auto mesh =
      r.snapshot->resources.find({ResourceKind::kMesh, "shop", "", "shop"});
  ASSERT_NE(mesh, r.snapshot->resources.end());
  EXPECT_TRUE(mesh->second->implicit);
  bool warned = false;
  for (const auto& d : r.snapshot->warnings)
    warned |= d.message.find("created implicitly") != std::string::npos;
  EXPECT_TRUE(warned);
}

TEST(SnapshotTest, ClusterFolderAndHiddenFilesAreNotModel) {
  TempConfigDir dir;
  WriteValidMesh(dir);
  dir.Write("cluster/nodes.json",
            R"([{"name": "a", "address": "198.18.0.1"}])");
  dir.Write(".swp.json", "not json");
  auto r = SnapshotBuilder(dir.path()).Build(nullptr);
  ASSERT_NE(r.snapshot, nullptr) << FirstError(r)->ToString();
  EXPECT_EQ(r.snapshot->files, 5u);
}

TEST(SnapshotTest, BrokenJsonNamesTheLine) {
  TempConfigDir dir;
  dir.Write("bad.json", "{\n  \"meshName\": \"x\",\n  \"spec\": {,}\n}\n");
  auto r = SnapshotBuilder(dir.path()).Build(nullptr);
  ASSERT_EQ(r.snapshot, nullptr);
  EXPECT_EQ(FirstError(r)->where.file, "bad.json");
  EXPECT_EQ(FirstError(r)->where.line, 3);
}

TEST(SnapshotTest, SpecOnlyFileWithKindIsNamedAfterTheFile) {
  TempConfigDir dir;
  dir.Write("colorteller-vn.json",
            R"({"spec": {"listeners": [{"portMapping": {"port": 9080,
               "protocol": "http"}}], "serviceDiscovery": {"dns":
               {"hostname": "colorteller.local"}}}})");
  SnapshotBuilder builder(dir.path(), ResourceKind::kVirtualNode);
  auto r = builder.Build(nullptr);
  ASSERT_NE(r.snapshot, nullptr) << FirstError(r)->ToString();
  ASSERT_EQ(r.snapshot->resources.size(), 1u);
  EXPECT_EQ(r.snapshot->resources.begin()->first.name, "colorteller-vn");
  // Without a kind the same file is an error that says what is missing.
  auto r2 = SnapshotBuilder(dir.path()).Build(nullptr);
  ASSERT_EQ(r2.snapshot, nullptr);
  EXPECT_NE(FirstError(r2)->message.find("meshName"), std::string::npos);
}

}  // namespace
}  // namespace nodemesh::model
