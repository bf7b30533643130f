#include "agent/model/k8s_manifest.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>

namespace nodemesh::model {
namespace {

namespace fs = std::filesystem;

std::string Join(const Diagnostics& d) {
  std::string out;
  for (const auto& item : d.items()) out += item.ToString() + "\n";
  return out;
}

std::vector<const Diagnostic*> Of(const Diagnostics& d,
                                  Diagnostic::Severity s) {
  std::vector<const Diagnostic*> out;
  for (const auto& item : d.items())
    if (item.severity == s) out.push_back(&item);
  return out;
}

const ApiShapeResource* FindResource(const std::vector<ApiShapeResource>& rs,
                                     ResourceKind kind,
                                     const std::string& name) {
  for (const auto& r : rs)
    if (r.id.kind == kind && r.id.name == name) return &r;
  return nullptr;
}

// Compact JSON. Not rapidjson::Writer: RapidJSON 1.1's stack does pointer
// arithmetic on null, which UBSan stops the test for.
void Write(const rapidjson::Value& v, std::string* out) {
  if (v.IsObject()) {
    *out += '{';
    for (auto it = v.MemberBegin(); it != v.MemberEnd(); ++it) {
      if (it != v.MemberBegin()) *out += ',';
      Write(it->name, out);
      *out += ':';
      Write(it->value, out);
    }
    *out += '}';
  } else if (v.IsArray()) {
    *out += '[';
    for (rapidjson::SizeType i = 0; i < v.Size(); ++i) {
      if (i > 0) *out += ',';
      Write(v[i], out);
    }
    *out += ']';
  } else if (v.IsString()) {
    *out += '"';
    for (char c : std::string(v.GetString(), v.GetStringLength())) {
      if (c == '"' || c == '\\') *out += '\\';
      *out += c;
    }
    *out += '"';
  } else if (v.IsBool()) {
    *out += v.GetBool() ? "true" : "false";
  } else if (v.IsNull()) {
    *out += "null";
  } else if (v.IsInt64()) {
    *out += std::to_string(v.GetInt64());
  } else if (v.IsUint64()) {
    *out += std::to_string(v.GetUint64());
  } else {
    *out += std::to_string(v.GetDouble());
  }
}

std::string Str(const rapidjson::Value& v) {
  std::string out;
  Write(v, &out);
  return out;
}

struct Converted {
  std::vector<ApiShapeResource> resources;
  Diagnostics diags;
  bool parsed = true;
};

Converted Convert(const std::string& yaml, K8sOptions options = {}) {
  Converted c;
  K8sObjectSet set(std::move(options));
  c.parsed = set.AddFile("app.yaml", yaml, &c.diags);
  c.resources = set.Resolve(&c.diags);
  return c;
}

// ---------------------------------------------------------------------------
// The real manifests of aws-app-mesh-examples.

struct ExampleFile {
  std::string path;                      // relative to the examples dir
  std::map<std::string, int> resources;  // kind -> count, from INDEX.md
};

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Trim(std::string s) {
  const char* ws = " \t`";
  s.erase(0, s.find_first_not_of(ws));
  s.erase(s.find_last_not_of(ws) + 1);
  return s;
}

// Rows of INDEX.md's table whose format column is "k8s"; the resources
// column reads "GatewayRoute, Mesh, Route×2, VirtualNode×2".
std::vector<ExampleFile> K8sExamples(const fs::path& dir) {
  std::vector<ExampleFile> out;
  std::istringstream index(ReadFile(dir / "INDEX.md"));
  for (std::string line; std::getline(index, line);) {
    if (line.rfind("| `", 0) != 0) continue;
    std::vector<std::string> cols;
    std::stringstream row(line.substr(1));
    for (std::string col; std::getline(row, col, '|');)
      cols.push_back(Trim(col));
    if (cols.size() < 4 || cols[2] != "k8s") continue;
    ExampleFile f{cols[0], {}};
    std::stringstream kinds(cols[3]);
    for (std::string item; std::getline(kinds, item, ',');) {
      item = Trim(item);
      int count = 1;
      if (size_t x = item.find("×"); x != std::string::npos) {
        count = std::stoi(item.substr(x + std::string("×").size()));
        item = item.substr(0, x);
      }
      f.resources[item] += count;
    }
    out.push_back(std::move(f));
  }
  return out;
}

std::map<std::string, int> CountKinds(const std::vector<ApiShapeResource>& rs) {
  std::map<std::string, int> out;
  for (const auto& r : rs) {
    if (!r.k8s) continue;  // meshes created implicitly are not in the file
    out[std::string(KindName(r.id.kind))]++;
  }
  return out;
}

class AppMeshExamples : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = NODEMESH_APPMESH_EXAMPLES_DIR;
    if (!fs::exists(dir_ / "INDEX.md"))
      GTEST_SKIP() << "no App Mesh examples at " << dir_;
    files_ = K8sExamples(dir_);
  }
  fs::path dir_;
  std::vector<ExampleFile> files_;
};

TEST_F(AppMeshExamples, EachFileConvertsWithTheIndexedResources) {
  ASSERT_EQ(files_.size(), 44u);
  for (const auto& f : files_) {
    SCOPED_TRACE(f.path);
    K8sObjectSet set;
    Diagnostics diags;
    ASSERT_TRUE(LooksLikeKubernetes(ReadFile(dir_ / f.path)));
    ASSERT_TRUE(set.AddFile(f.path, ReadFile(dir_ / f.path), &diags))
        << Join(diags);
    auto rs = set.Resolve(&diags);
    EXPECT_FALSE(diags.has_errors()) << Join(diags);
    // A GatewayRoute whose gateway is in no given file stays pending (left
    // out, with a warning), as the App Mesh controller leaves it.
    auto expected = f.resources;
    size_t pending = 0;
    for (const auto& d : diags.items())
      pending += d.message.find("stays pending") != std::string::npos;
    if (pending) {
      EXPECT_EQ(expected["GatewayRoute"], static_cast<int>(pending));
      expected.erase("GatewayRoute");
    }
    EXPECT_EQ(CountKinds(rs), expected);
    for (const auto& r : rs) {
      // The API envelope: meshName, the parent for routes, the name, spec.
      ASSERT_TRUE(r.doc.IsObject());
      EXPECT_EQ(r.doc["meshName"].GetString(), r.id.mesh);
      EXPECT_TRUE(r.doc["spec"].IsObject());
      if (r.id.kind != ResourceKind::kMesh) {
        std::string key(NameKey(r.id.kind));
        EXPECT_EQ(r.doc[key.c_str()].GetString(), r.id.name);
      }
      std::string spec = Str(r.doc["spec"]);
      for (const char* k8s_only :
           {"Ref\":", "\"awsName\":", "\"meshRef\":", "\"podSelector\":",
            "\"namespaceSelector\":", "\"routes\":", "ARN\":", "ARNs\":"})
        EXPECT_EQ(spec.find(k8s_only), std::string::npos)
            << r.id.ToString() << ": " << spec;
      if (r.k8s) {
        EXPECT_EQ(r.where.file, f.path);
        EXPECT_GT(r.where.line, 0);
      }
    }
  }
}

// All k8s files of one walkthrough (or blog) directory, applied in sorted
// order, as one state.
TEST_F(AppMeshExamples, EachDirectoryConvertsAsOneState) {
  std::map<std::string, std::vector<std::string>> by_dir;
  for (const auto& f : files_) {
    fs::path p(f.path);
    auto it = p.begin();
    std::string dir = it->string() + "/" + (++it)->string();
    by_dir[dir].push_back(f.path);
  }
  EXPECT_GE(by_dir.size(), 20u);
  for (auto& [dir, paths] : by_dir) {
    SCOPED_TRACE(dir);
    std::sort(paths.begin(), paths.end());
    K8sObjectSet set;
    Diagnostics diags;
    for (const auto& p : paths)
      ASSERT_TRUE(set.AddFile(p, ReadFile(dir_ / p), &diags)) << Join(diags);
    auto rs = set.Resolve(&diags);
    EXPECT_FALSE(diags.has_errors()) << Join(diags);
    EXPECT_FALSE(rs.empty());
    // Every mesh a resource names is among the resources.
    for (const auto& r : rs) {
      EXPECT_NE(FindResource(rs, ResourceKind::kMesh, r.id.mesh), nullptr)
          << r.id.ToString();
    }
  }
}

TEST_F(AppMeshExamples, BulkheadBlogResolvesRoutesAndGateway) {
  const char* path =
      "blogs/eks-bulkhead-pattern-circuit-breaker/manifests/"
      "base.template.yaml";
  K8sObjectSet set;
  Diagnostics diags;
  ASSERT_TRUE(set.AddFile(path, ReadFile(dir_ / path), &diags));
  auto rs = set.Resolve(&diags);
  ASSERT_FALSE(diags.has_errors()) << Join(diags);
  const std::string mesh = "eks-bulkhead-pattern-circuit-breaker";
  const auto* route =
      FindResource(rs, ResourceKind::kRoute, "price-write-route");
  ASSERT_NE(route, nullptr);
  EXPECT_EQ(route->id.mesh, mesh);
  EXPECT_EQ(route->id.parent, "price-router_" + mesh);
  EXPECT_EQ(route->spec_path, "spec.routes[1]");
  EXPECT_EQ(Str(route->doc["spec"]["httpRoute"]["action"]),
            "{\"weightedTargets\":[{\"virtualNode\":\"price-write-node_" +
                mesh + "\",\"weight\":1}]}");
  const auto* gr = FindResource(rs, ResourceKind::kGatewayRoute,
                                "gateway-route-paths_" + mesh);
  ASSERT_NE(gr, nullptr);
  EXPECT_EQ(gr->id.parent, "ingress-gw_" + mesh);
  EXPECT_EQ(std::string(gr->doc["virtualGatewayName"].GetString()),
            "ingress-gw_" + mesh);
  // The VirtualService has an awsName; the target uses it.
  EXPECT_EQ(std::string(gr->doc["spec"]["httpRoute"]["action"]["target"]
                               ["virtualService"]["virtualServiceName"]
                                   .GetString()),
            "price-service." + mesh + ".svc.cluster.local");
}

// ---------------------------------------------------------------------------
// Focused rules.

TEST(K8sManifest, AwsNameOrTheControllersDefaultNames) {
  auto c = Convert(R"(
apiVersion: appmesh.k8s.aws/v1beta2
kind: Mesh
metadata: {name: global}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualService
metadata: {name: color, namespace: shop}
spec: {}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualNode
metadata: {name: blue, namespace: shop}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualRouter
metadata: {name: color-vr, namespace: shop}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualGateway
metadata: {name: gw, namespace: shop}
spec: {namespaceSelector: {}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: GatewayRoute
metadata: {name: gr, namespace: shop}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualNode
metadata: {name: red, namespace: shop}
spec: {awsName: red-node}
)");
  ASSERT_FALSE(c.diags.has_errors()) << Join(c.diags);
  ASSERT_EQ(c.resources.size(), 7u);
  EXPECT_NE(FindResource(c.resources, ResourceKind::kMesh, "global"), nullptr);
  EXPECT_NE(
      FindResource(c.resources, ResourceKind::kVirtualService, "color.shop"),
      nullptr);
  EXPECT_NE(FindResource(c.resources, ResourceKind::kVirtualNode, "blue_shop"),
            nullptr);
  EXPECT_NE(
      FindResource(c.resources, ResourceKind::kVirtualRouter, "color-vr_shop"),
      nullptr);
  EXPECT_NE(FindResource(c.resources, ResourceKind::kVirtualGateway, "gw_shop"),
            nullptr);
  const auto* gr =
      FindResource(c.resources, ResourceKind::kGatewayRoute, "gr_shop");
  ASSERT_NE(gr, nullptr);
  EXPECT_EQ(gr->id.parent, "gw_shop");
  const auto* red =
      FindResource(c.resources, ResourceKind::kVirtualNode, "red-node");
  ASSERT_NE(red, nullptr);
  EXPECT_EQ(red->id.mesh, "global");
  EXPECT_EQ(Str(red->doc),
            "{\"meshName\":\"global\",\"virtualNodeName\":\"red-node\","
            "\"spec\":{}}");
  ASSERT_TRUE(red->k8s);
  EXPECT_EQ(red->k8s->namespace_name, "shop");
  EXPECT_EQ(red->k8s->name, "red");
}

TEST(K8sManifest, InlineRoutesBecomeRoutesWithResolvedWeightedTargets) {
  auto c = Convert(R"(apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualRouter
metadata: {name: color-vr, namespace: demo}
spec:
  awsName: color-router
  listeners: [{portMapping: {port: 8080, protocol: http}}]
  routes:
    - name: tcp
      tcpRoute:
        action: {weightedTargets: [{virtualNodeRef: {name: blue}, weight: 1}]}
    - name: color-route
      priority: 10
      httpRoute:
        match: {prefix: /}
        action:
          weightedTargets:
            - {virtualNodeRef: {name: blue}, weight: 1}
            - {virtualNodeRef: {name: red, namespace: other}, weight: 2}
            - virtualNodeARN: arn:aws:appmesh:us-west-2:111122223333:mesh/default/virtualNode/green
              weight: 3
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualNode
metadata: {name: blue, namespace: demo}
spec: {awsName: blue-vn}
)");
  ASSERT_FALSE(c.diags.has_errors()) << Join(c.diags);
  const auto* vr =
      FindResource(c.resources, ResourceKind::kVirtualRouter, "color-router");
  ASSERT_NE(vr, nullptr);
  EXPECT_EQ(Str(vr->doc["spec"]),
            "{\"listeners\":[{\"portMapping\":{\"port\":8080,\"protocol\":"
            "\"http\"}}]}");
  const auto* route =
      FindResource(c.resources, ResourceKind::kRoute, "color-route");
  ASSERT_NE(route, nullptr);
  EXPECT_EQ(route->id.parent, "color-router");
  EXPECT_EQ(route->spec_path, "spec.routes[1]");
  EXPECT_EQ(Str(route->doc),
            "{\"meshName\":\"default\",\"virtualRouterName\":\"color-router\","
            "\"routeName\":\"color-route\",\"spec\":{\"priority\":10,"
            "\"httpRoute\":{\"match\":{\"prefix\":\"/\"},\"action\":{"
            "\"weightedTargets\":[{\"virtualNode\":\"blue-vn\",\"weight\":1},"
            "{\"virtualNode\":\"red_other\",\"weight\":2},"
            "{\"virtualNode\":\"green\",\"weight\":3}]}}}}");
  const auto* tcp = FindResource(c.resources, ResourceKind::kRoute, "tcp");
  ASSERT_NE(tcp, nullptr);
  EXPECT_EQ(tcp->spec_path, "spec.routes[0]");
  ASSERT_TRUE(tcp->k8s);
  EXPECT_EQ(tcp->k8s->kind, "VirtualRouter");
}

TEST(K8sManifest, NamespaceSelectorDecidesMeshMembership) {
  auto c = Convert(R"(
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {mesh: retail}}
---
apiVersion: v1
kind: Namespace
metadata: {name: bank, labels: {tier: gold}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: Mesh
metadata: {name: retail}
spec: {awsName: retail-mesh, namespaceSelector: {matchLabels: {mesh: retail}}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: Mesh
metadata: {name: finance}
spec:
  namespaceSelector:
    matchExpressions:
      - {key: tier, operator: In, values: [gold, silver]}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualNode
metadata: {name: cart, namespace: shop}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualNode
metadata: {name: ledger, namespace: bank}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualNode
metadata: {name: pinned, namespace: bank}
spec: {meshRef: {name: retail, uid: x}}
)");
  ASSERT_FALSE(c.diags.has_errors()) << Join(c.diags);
  EXPECT_EQ(FindResource(c.resources, ResourceKind::kVirtualNode, "cart_shop")
                ->id.mesh,
            "retail-mesh");
  EXPECT_EQ(FindResource(c.resources, ResourceKind::kVirtualNode, "ledger_bank")
                ->id.mesh,
            "finance");
  // meshRef names the Kubernetes Mesh; the resource gets its AWS name.
  EXPECT_EQ(FindResource(c.resources, ResourceKind::kVirtualNode, "pinned_bank")
                ->id.mesh,
            "retail-mesh");
  const auto* retail =
      FindResource(c.resources, ResourceKind::kMesh, "retail-mesh");
  ASSERT_NE(retail, nullptr);
  EXPECT_EQ(Str(retail->doc["spec"]), "{}");
  ASSERT_TRUE(retail->k8s && retail->k8s->namespace_selector);
  EXPECT_EQ(retail->k8s->namespace_selector->match_labels.at("mesh"), "retail");
}

TEST(K8sManifest, SeveralMeshesAndNoWayToDecideIsAnErrorNamingTheObject) {
  auto c = Convert(R"(
apiVersion: appmesh.k8s.aws/v1beta2
kind: Mesh
metadata: {name: a}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: Mesh
metadata: {name: b}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualNode
metadata: {name: lost, namespace: nowhere}
)");
  auto errors = Of(c.diags, Diagnostic::Severity::kError);
  ASSERT_EQ(errors.size(), 1u) << Join(c.diags);
  EXPECT_NE(errors[0]->message.find("VirtualNode nowhere/lost"),
            std::string::npos);
  EXPECT_EQ(errors[0]->where.document, 2);
  EXPECT_EQ(
      FindResource(c.resources, ResourceKind::kVirtualNode, "lost_nowhere"),
      nullptr);
}

TEST(K8sManifest, NoMeshObjectCreatesTheLabelledMeshWithAWarning) {
  auto c = Convert(R"(
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {mesh: retail}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualNode
metadata: {name: cart, namespace: shop}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualService
metadata: {name: cart, namespace: elsewhere}
)");
  ASSERT_FALSE(c.diags.has_errors()) << Join(c.diags);
  auto warnings = Of(c.diags, Diagnostic::Severity::kWarning);
  ASSERT_EQ(warnings.size(), 1u) << Join(c.diags);
  EXPECT_EQ(warnings[0]->resource, "Mesh retail");
  const auto* mesh = FindResource(c.resources, ResourceKind::kMesh, "retail");
  ASSERT_NE(mesh, nullptr);
  EXPECT_FALSE(mesh->k8s);
  EXPECT_EQ(Str(mesh->doc), "{\"meshName\":\"retail\",\"spec\":{}}");
  // The service's namespace is unknown; the one mesh there is takes it.
  EXPECT_EQ(
      FindResource(c.resources, ResourceKind::kVirtualService, "cart.elsewhere")
          ->id.mesh,
      "retail");
}

TEST(K8sManifest, NothingNamesAMeshSoTheDefaultMeshIsCreated) {
  auto c = Convert(R"(apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualNode
metadata: {name: db}
)",
                   K8sOptions{.default_namespace = "prod",
                              .default_mesh = "fallback",
                              .account_id = ""});
  ASSERT_FALSE(c.diags.has_errors()) << Join(c.diags);
  EXPECT_EQ(Of(c.diags, Diagnostic::Severity::kWarning).size(), 1u);
  ASSERT_EQ(c.resources.size(), 2u);
  EXPECT_EQ(c.resources[0].id.ToString(), "Mesh fallback");
  EXPECT_EQ(c.resources[1].id.ToString(), "VirtualNode fallback/db_prod");
}

TEST(K8sManifest, ArnIntoAnotherAccountOrMeshWarnsAndKeepsTheName) {
  auto c = Convert(R"(
apiVersion: appmesh.k8s.aws/v1beta2
kind: Mesh
metadata: {name: m}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualNode
metadata: {name: ui, namespace: web}
spec:
  backends:
    - virtualService:
        virtualServiceARN: arn:aws:appmesh:us-west-2:222222222222:mesh/m/virtualService/api
    - virtualService:
        virtualServiceARN: arn:aws:appmesh:us-west-2:111111111111:mesh/other/virtualService/db
    - virtualService:
        virtualServiceARN: arn:aws:appmesh:us-west-2:111111111111:mesh/m/virtualService/local
    - virtualService:
        virtualServiceRef: {name: cache}
)",
                   K8sOptions{.default_namespace = "default",
                              .default_mesh = "default",
                              .account_id = "111111111111"});
  ASSERT_FALSE(c.diags.has_errors()) << Join(c.diags);
  auto warnings = Of(c.diags, Diagnostic::Severity::kWarning);
  ASSERT_EQ(warnings.size(), 2u) << Join(c.diags);
  EXPECT_EQ(warnings[0]->field_path,
            "spec.backends[0].virtualService.virtualServiceARN");
  EXPECT_NE(warnings[0]->message.find("account 222222222222"),
            std::string::npos);
  EXPECT_NE(warnings[1]->message.find("mesh other"), std::string::npos);
  const auto* ui =
      FindResource(c.resources, ResourceKind::kVirtualNode, "ui_web");
  ASSERT_NE(ui, nullptr);
  EXPECT_EQ(Str(ui->doc["spec"]),
            "{\"backends\":["
            "{\"virtualService\":{\"virtualServiceName\":\"api\"}},"
            "{\"virtualService\":{\"virtualServiceName\":\"db\"}},"
            "{\"virtualService\":{\"virtualServiceName\":\"local\"}},"
            "{\"virtualService\":{\"virtualServiceName\":\"cache.web\"}}]}");
}

TEST(K8sManifest, ArnOfTheWrongTypeIsAnErrorAndANonArnAWarning) {
  auto c = Convert(R"(apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualService
metadata: {name: s, namespace: n}
spec:
  provider:
    virtualNode:
      virtualNodeARN: arn:aws:appmesh:us-west-2:1:mesh/default/virtualRouter/r
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualService
metadata: {name: t, namespace: n}
spec:
  provider:
    virtualRouter:
      virtualRouterARN: some-router-ARN
)");
  auto errors = Of(c.diags, Diagnostic::Severity::kError);
  ASSERT_EQ(errors.size(), 1u) << Join(c.diags);
  EXPECT_EQ(errors[0]->field_path, "spec.provider.virtualNode.virtualNodeARN");
  const auto* t =
      FindResource(c.resources, ResourceKind::kVirtualService, "t.n");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(Str(t->doc["spec"]),
            "{\"provider\":{\"virtualRouter\":{\"virtualRouterName\":"
            "\"some-router-ARN\"}}}");
}

TEST(K8sManifest, ALaterDefinitionReplacesTheEarlierOne) {
  K8sObjectSet set;
  Diagnostics diags;
  const char* v1 = R"(apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualNode
metadata: {name: api, namespace: n}
spec: {serviceDiscovery: {dns: {hostname: v1.local}}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualNode
metadata: {name: other, namespace: n}
)";
  const char* v2 = R"(apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualNode
metadata: {name: api, namespace: n}
spec: {serviceDiscovery: {dns: {hostname: v2.local}}}
)";
  ASSERT_TRUE(set.AddFile("a.yaml", v1, &diags));
  ASSERT_TRUE(set.AddFile("b.yaml", v2, &diags));
  EXPECT_EQ(set.object_count(), 2u);
  auto rs = set.Resolve(&diags);
  ASSERT_FALSE(diags.has_errors()) << Join(diags);
  ASSERT_EQ(CountKinds(rs)["VirtualNode"], 2);
  const auto* api = FindResource(rs, ResourceKind::kVirtualNode, "api_n");
  ASSERT_NE(api, nullptr);
  EXPECT_EQ(api->where.file, "b.yaml");
  EXPECT_EQ(
      std::string(
          api->doc["spec"]["serviceDiscovery"]["dns"]["hostname"].GetString()),
      "v2.local");
}

TEST(K8sManifest, OtherKindsAreNotedAndSkipped) {
  auto c = Convert(R"(apiVersion: apps/v1
kind: Deployment
metadata: {name: front, namespace: shop}
spec: {replicas: 1}
---
apiVersion: v1
kind: Service
metadata: {name: front, namespace: shop}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: BackendGroup
metadata: {name: bg, namespace: shop}
---
apiVersion: appmesh.k8s.aws/v1beta1
kind: VirtualNode
metadata: {name: legacy, namespace: shop}
)");
  ASSERT_FALSE(c.diags.has_errors()) << Join(c.diags);
  EXPECT_TRUE(c.resources.empty());
  auto notes = Of(c.diags, Diagnostic::Severity::kNote);
  ASSERT_EQ(notes.size(), 3u) << Join(c.diags);
  EXPECT_NE(notes[0]->message.find("Deployment shop/front"), std::string::npos);
  EXPECT_NE(notes[1]->message.find("Service shop/front"), std::string::npos);
  EXPECT_EQ(notes[1]->where.document, 1);
  EXPECT_EQ(notes[1]->where.line, 6);
  EXPECT_NE(notes[2]->message.find("BackendGroup"), std::string::npos);
  auto warnings = Of(c.diags, Diagnostic::Severity::kWarning);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0]->message.find("v1beta1"), std::string::npos);
}

TEST(K8sManifest, BadYamlIsAnErrorWithFileAndLine) {
  K8sObjectSet set;
  Diagnostics diags;
  EXPECT_FALSE(set.AddFile("broken.yaml", R"(apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualNode
metadata: {name: x
spec: {}
)",
                           &diags));
  auto errors = Of(diags, Diagnostic::Severity::kError);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0]->where.file, "broken.yaml");
  EXPECT_GE(errors[0]->where.line, 3);
  EXPECT_LE(errors[0]->where.line, 5);
  EXPECT_EQ(set.object_count(), 0u);
}

TEST(K8sManifest, SpellingsThatDifferAndKubernetesOnlyFields) {
  auto c = Convert(R"(apiVersion: appmesh.k8s.aws/v1beta2
kind: Mesh
metadata: {name: m}
spec:
  meshServiceDiscovery: {ipPreference: IPv4_ONLY}
  egressFilter: {type: DROP_ALL}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualGateway
metadata: {name: gw, namespace: n, labels: {team: edge}}
spec:
  podSelector: {matchLabels: {app: gw}}
  namespaceSelector: {matchLabels: {gateway: gw}}
  gatewayRouteSelector:
    matchExpressions: [{key: expose, operator: Exists}]
  listeners:
    - portMapping: {port: 8443, protocol: http}
      tls:
        mode: STRICT
        certificate: {acm: {certificateARN: "arn:aws:acm:us-west-2:1:certificate/c"}}
  backendDefaults:
    clientPolicy:
      tls:
        validation:
          trust: {acm: {certificateAuthorityARNs: ["arn:aws:acm-pca:us-west-2:1:certificate-authority/ca"]}}
  unknownField: {kept: "yes", port: "8080", n: 8080, on: true, none: ~}
)");
  ASSERT_FALSE(c.diags.has_errors()) << Join(c.diags);
  const auto* mesh = FindResource(c.resources, ResourceKind::kMesh, "m");
  ASSERT_NE(mesh, nullptr);
  EXPECT_EQ(Str(mesh->doc["spec"]),
            "{\"serviceDiscovery\":{\"ipPreference\":\"IPv4_ONLY\"},"
            "\"egressFilter\":{\"type\":\"DROP_ALL\"}}");
  const auto* gw =
      FindResource(c.resources, ResourceKind::kVirtualGateway, "gw_n");
  ASSERT_NE(gw, nullptr);
  EXPECT_EQ(
      Str(gw->doc["spec"]),
      "{\"listeners\":[{\"portMapping\":{\"port\":8443,\"protocol\":\"http\"},"
      "\"tls\":{\"mode\":\"STRICT\",\"certificate\":{\"acm\":{"
      "\"certificateArn\":\"arn:aws:acm:us-west-2:1:certificate/c\"}}}}],"
      "\"backendDefaults\":{\"clientPolicy\":{\"tls\":{\"validation\":{"
      "\"trust\":{\"acm\":{\"certificateAuthorityArns\":[\"arn:aws:acm-pca:"
      "us-west-2:1:certificate-authority/ca\"]}}}}}},"
      "\"unknownField\":{\"kept\":\"yes\",\"port\":\"8080\",\"n\":8080,"
      "\"on\":true,\"none\":null}}");
  ASSERT_TRUE(gw->k8s);
  EXPECT_EQ(gw->k8s->labels.at("team"), "edge");
  ASSERT_TRUE(gw->k8s->pod_selector);
  EXPECT_TRUE(gw->k8s->pod_selector->Matches({{"app", "gw"}, {"x", "y"}}));
  EXPECT_FALSE(gw->k8s->pod_selector->Matches({{"app", "other"}}));
  ASSERT_TRUE(gw->k8s->gateway_route_selector);
  EXPECT_TRUE(gw->k8s->gateway_route_selector->Matches({{"expose", ""}}));
  EXPECT_FALSE(gw->k8s->gateway_route_selector->Matches({}));
}

TEST(K8sManifest, GatewayRoutesAttachByNamespaceAndRouteSelectors) {
  const std::string base = R"(
apiVersion: v1
kind: Namespace
metadata: {name: edge, labels: {gateway: public}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: Mesh
metadata: {name: m}
spec: {namespaceSelector: {}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualGateway
metadata: {name: public, namespace: edge}
spec:
  namespaceSelector: {matchLabels: {gateway: public}}
  gatewayRouteSelector: {matchLabels: {exposed: "true"}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualGateway
metadata: {name: internal, namespace: edge}
spec:
  namespaceSelector: {matchLabels: {gateway: public}}
  gatewayRouteSelector: {matchLabels: {exposed: "false"}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: GatewayRoute
metadata: {name: shop, namespace: edge, labels: {exposed: "true"}}
spec:
  httpRoute:
    match: {prefix: /}
    action: {target: {virtualService: {virtualServiceRef: {name: shop, namespace: web}}}}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: GatewayRoute
metadata: {name: pinned, namespace: edge}
spec: {virtualGatewayRef: {name: internal, uid: u}}
)";
  auto c = Convert(base);
  ASSERT_FALSE(c.diags.has_errors()) << Join(c.diags);
  const auto* shop =
      FindResource(c.resources, ResourceKind::kGatewayRoute, "shop_edge");
  ASSERT_NE(shop, nullptr);
  EXPECT_EQ(shop->id.parent, "public_edge");
  EXPECT_EQ(Str(shop->doc),
            "{\"meshName\":\"m\",\"virtualGatewayName\":\"public_edge\","
            "\"gatewayRouteName\":\"shop_edge\",\"spec\":{\"httpRoute\":{"
            "\"match\":{\"prefix\":\"/\"},\"action\":{\"target\":{"
            "\"virtualService\":{\"virtualServiceName\":\"shop.web\"}}}}}}");
  const auto* pinned =
      FindResource(c.resources, ResourceKind::kGatewayRoute, "pinned_edge");
  ASSERT_NE(pinned, nullptr);
  EXPECT_EQ(pinned->id.parent, "internal_edge");
  EXPECT_EQ(Str(pinned->doc["spec"]), "{}");

  // A route both gateways select is ambiguous.
  auto ambiguous = Convert(base + R"(
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualGateway
metadata: {name: third, namespace: edge}
spec: {namespaceSelector: {}}
)");
  auto errors = Of(ambiguous.diags, Diagnostic::Severity::kError);
  ASSERT_EQ(errors.size(), 1u) << Join(ambiguous.diags);
  EXPECT_NE(errors[0]->message.find("GatewayRoute edge/shop"),
            std::string::npos);
}

TEST(K8sManifest, DocumentIndexAndLineAreRecorded) {
  auto c = Convert(R"(---
apiVersion: v1
kind: ConfigMap
metadata: {name: c}
---
# a comment
apiVersion: appmesh.k8s.aws/v1beta2
kind: Mesh
metadata: {name: m}
)");
  ASSERT_EQ(c.resources.size(), 1u);
  EXPECT_EQ(c.resources[0].where.file, "app.yaml");
  EXPECT_EQ(c.resources[0].where.document, 1);
  EXPECT_EQ(c.resources[0].where.line, 7);
}

TEST(K8sManifest, DuplicateAwsNamesAreAnError) {
  auto c = Convert(R"(apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualNode
metadata: {name: a, namespace: n}
spec: {awsName: same}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualNode
metadata: {name: b, namespace: n}
spec: {awsName: same}
)");
  auto errors = Of(c.diags, Diagnostic::Severity::kError);
  ASSERT_EQ(errors.size(), 1u) << Join(c.diags);
  EXPECT_EQ(errors[0]->resource, "VirtualNode default/same");
}

TEST(K8sManifest, InvalidSelectorOperatorIsAnError) {
  auto c = Convert(R"(apiVersion: appmesh.k8s.aws/v1beta2
kind: Mesh
metadata: {name: m}
spec:
  namespaceSelector:
    matchExpressions: [{key: a, operator: Like, values: [x]}]
)");
  auto errors = Of(c.diags, Diagnostic::Severity::kError);
  ASSERT_EQ(errors.size(), 1u) << Join(c.diags);
  EXPECT_EQ(errors[0]->field_path,
            "spec.namespaceSelector.matchExpressions[0].operator");
}

TEST(K8sManifest, StructuralLimitsRejectTheFileWithTheLine) {
  // Nesting past the reader's bound, or a key that is a list: the file is
  // refused as a whole, like a syntax error, naming the line.
  std::string deep =
      "apiVersion: appmesh.k8s.aws/v1beta2\nkind: Mesh\n"
      "metadata: {name: m}\nspec: {x: ";
  for (int i = 0; i < 100; ++i) deep += "[";
  for (int i = 0; i < 100; ++i) deep += "]";
  deep += "}\n";
  auto c = Convert(deep);
  EXPECT_FALSE(c.parsed);
  ASSERT_EQ(c.diags.error_count(), 1u) << Join(c.diags);
  EXPECT_NE(Join(c.diags).find("nested too deeply"), std::string::npos);
  EXPECT_EQ(c.diags.items()[0].where.line, 4);
  auto complex = Convert(
      "apiVersion: appmesh.k8s.aws/v1beta2\nkind: VirtualNode\n"
      "metadata: {name: k, namespace: n}\nspec: {? [complex, key] : 1}\n");
  EXPECT_FALSE(complex.parsed);
  EXPECT_NE(Join(complex.diags).find("key"), std::string::npos);
}

TEST(K8sManifest, OddDocumentsAreReportedNotFatal) {
  auto c = Convert(R"(just a string
---
- a list
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualNode
metadata: {namespace: n}
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualRouter
metadata: {name: r, namespace: n}
spec:
  routes: [{httpRoute: {}}, {name: ok, httpRoute: &shared {match: {prefix: /}}}, {name: ok2, httpRoute: *shared}]
)");
  EXPECT_TRUE(c.parsed);
  // Missing metadata.name, route without a name.
  EXPECT_EQ(c.diags.error_count(), 2u) << Join(c.diags);
  EXPECT_NE(FindResource(c.resources, ResourceKind::kRoute, "ok"), nullptr);
  const auto* ok2 = FindResource(c.resources, ResourceKind::kRoute, "ok2");
  ASSERT_NE(ok2, nullptr);
  EXPECT_EQ(Str(ok2->doc["spec"]),
            "{\"httpRoute\":{\"match\":{\"prefix\":\"/\"}}}");
}

TEST(K8sManifest, AliasesCannotExplode) {
  // "Billion laughs": each level doubles; the reader bounds the nodes.
  std::string yaml = "a0: &a0 [x, x]\n";
  for (int i = 1; i < 40; ++i)
    yaml += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [*a" +
            std::to_string(i - 1) + ", *a" + std::to_string(i - 1) + "]\n";
  yaml =
      "apiVersion: appmesh.k8s.aws/v1beta2\nkind: Mesh\nmetadata: {name: m}\n"
      "spec:\n  " +
      std::regex_replace(yaml, std::regex("\n(?=.)"), "\n  ");
  auto c = Convert(yaml);
  EXPECT_FALSE(c.parsed);
  EXPECT_NE(Join(c.diags).find("too"), std::string::npos) << Join(c.diags);
}

TEST(K8sManifest, LooksLikeKubernetes) {
  EXPECT_TRUE(LooksLikeKubernetes("apiVersion: v1\nkind: Namespace\n"));
  EXPECT_TRUE(LooksLikeKubernetes(
      "{\"apiVersion\": \"appmesh.k8s.aws/v1beta2\", \"kind\": \"Mesh\"}"));
  EXPECT_TRUE(
      LooksLikeKubernetes("---\n- x\n---\n  apiVersion : v1\n kind: A"));
  EXPECT_FALSE(LooksLikeKubernetes(
      "{\"meshName\": \"m\", \"spec\": {\"egressFilter\": {\"type\": "
      "\"ALLOW_ALL\"}}}"));
  EXPECT_FALSE(LooksLikeKubernetes("{\"spec\": {\"kind\": 1}}"));
  EXPECT_FALSE(LooksLikeKubernetes("myapiVersion: 1\nkind: x"));
}

}  // namespace
}  // namespace nodemesh::model
