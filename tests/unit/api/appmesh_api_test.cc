#include "agent/api/appmesh_api.h"

#include <time.h>

#include <deque>
#include <string>
#include <utility>
#include <vector>

#include "agent/model/json.h"
#include "gtest/gtest.h"
#include "tests/unit/api/memory_resource_store.h"

namespace nodemesh::api {
namespace {

using admin::AdminResponse;

struct Reply {
  int status = 0;
  std::string error_type;  // x-amzn-ErrorType
  rapidjson::Document json;
  std::string body;
};

class AppMeshApiTest : public ::testing::Test {
 protected:
  void SetUp() override { UseAuth(ApiAuthConfig::Mode::kNone, std::nullopt); }

  void UseAuth(ApiAuthConfig::Mode mode, std::optional<CredentialSet> creds) {
    ApiAuthConfig auth;
    auth.mode = mode;
    api_ = std::make_unique<AppMeshApi>(&store_, auth, std::move(creds));
  }

  Reply Call(
      const std::string& method, const std::string& target,
      const std::string& body = "",
      const std::vector<std::pair<std::string, std::string>>& headers = {}) {
    std::string path = target, query;
    if (size_t q = target.find('?'); q != std::string::npos) {
      path = target.substr(0, q);
      query = target.substr(q + 1);
    }
    http::HeaderList hl;
    for (const auto& [n, v] : headers) hl.Add(n, v);
    admin::AdminRequest req;
    req.method = method;
    req.path = path;
    req.query = query;
    req.body = body;
    req.headers = &hl;
    AdminResponse resp = api_->Serve(req);
    Reply r;
    r.status = resp.status;
    r.body = resp.body;
    for (const auto& [n, v] : resp.headers) {
      if (n == "x-amzn-ErrorType") r.error_type = v;
    }
    r.json.Parse(resp.body.c_str());
    EXPECT_FALSE(r.json.HasParseError()) << resp.body;
    EXPECT_EQ(resp.content_type, "application/json");
    return r;
  }

  static std::string Str(const rapidjson::Value& v, const char* key) {
    if (!v.IsObject() || !v.HasMember(key) || !v[key].IsString()) return "<>";
    return v[key].GetString();
  }

  void MakeMesh(const std::string& name = "shop") {
    ASSERT_EQ(
        Call("PUT", "/v20190125/meshes", R"({"meshName":")" + name + R"("})")
            .status,
        200);
  }

  testing::MemoryResourceStore store_;
  std::unique_ptr<AppMeshApi> api_;
};

constexpr char kNodeSpec[] =
    R"({"listeners":[{"portMapping":{"port":8080,"protocol":"http"}}],)"
    R"("serviceDiscovery":{"dns":{"hostname":"front.shop.local"}}})";

TEST_F(AppMeshApiTest, CreateMeshReturnsMeshDataAsPayload) {
  Reply r = Call("PUT", "/v20190125/meshes",
                 R"({"meshName":"shop","clientToken":"t-1"})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Str(r.json, "meshName"), "shop");
  EXPECT_TRUE(r.json["spec"].IsObject());
  const rapidjson::Value& md = r.json["metadata"];
  EXPECT_EQ(Str(md, "arn"), "arn:aws:appmesh:us-west-2:111122223333:mesh/shop");
  EXPECT_TRUE(md["createdAt"].IsNumber());
  EXPECT_TRUE(md["lastUpdatedAt"].IsNumber());
  EXPECT_EQ(md["version"].GetInt64(), 1);
  EXPECT_EQ(Str(md, "uid"), "uid-1");
  EXPECT_EQ(Str(md, "meshOwner"), "111122223333");
  EXPECT_EQ(Str(md, "resourceOwner"), "111122223333");
  EXPECT_EQ(Str(r.json["status"], "status"), "ACTIVE");
  EXPECT_FALSE(r.json.HasMember("mesh"));  // payload, not wrapped
}

TEST_F(AppMeshApiTest, VirtualNodeLifecycle) {
  MakeMesh();
  Reply c = Call(
      "PUT", "/v20190125/meshes/shop/virtualNodes?meshOwner=111122223333",
      std::string(R"({"virtualNodeName":"front","spec":)") + kNodeSpec + "}");
  ASSERT_EQ(c.status, 200) << c.body;
  EXPECT_EQ(Str(c.json, "virtualNodeName"), "front");
  EXPECT_EQ(Str(c.json, "meshName"), "shop");
  EXPECT_EQ(c.json["spec"]["listeners"][0]["portMapping"]["port"].GetInt(),
            8080);
  EXPECT_EQ(
      Str(c.json["metadata"], "arn"),
      "arn:aws:appmesh:us-west-2:111122223333:mesh/shop/virtualNode/front");

  Reply d = Call("GET", "/v20190125/meshes/shop/virtualNodes/front");
  ASSERT_EQ(d.status, 200);
  EXPECT_EQ(Str(d.json["spec"]["serviceDiscovery"]["dns"], "hostname"),
            "front.shop.local");

  Reply u = Call("PUT", "/v20190125/meshes/shop/virtualNodes/front",
                 R"({"spec":{"listeners":[]},"clientToken":"x"})");
  ASSERT_EQ(u.status, 200) << u.body;
  EXPECT_EQ(u.json["metadata"]["version"].GetInt64(), 2);
  EXPECT_TRUE(u.json["spec"]["listeners"].Empty());

  Reply del = Call("DELETE", "/v20190125/meshes/shop/virtualNodes/front");
  ASSERT_EQ(del.status, 200);
  EXPECT_EQ(Str(del.json["status"], "status"), "DELETED");
  EXPECT_EQ(Call("GET", "/v20190125/meshes/shop/virtualNodes/front").status,
            404);
}

TEST_F(AppMeshApiTest, ErrorsCarryTypeHeaderAndMessage) {
  MakeMesh();
  Reply dup = Call("PUT", "/v20190125/meshes", R"({"meshName":"shop"})");
  EXPECT_EQ(dup.status, 409);
  EXPECT_EQ(dup.error_type, "ConflictException");
  EXPECT_EQ(Str(dup.json, "message"), "Mesh shop already exists");

  Reply nf = Call("GET", "/v20190125/meshes/shop/virtualRouters/nope");
  EXPECT_EQ(nf.status, 404);
  EXPECT_EQ(nf.error_type, "NotFoundException");

  Reply bad = Call("PUT", "/v20190125/meshes/shop/virtualNodes", "{not json");
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(bad.error_type, "BadRequestException");
  EXPECT_NE(Str(bad.json, "message").find("CreateVirtualNode"),
            std::string::npos);

  Reply noname =
      Call("PUT", "/v20190125/meshes/shop/virtualNodes", R"({"spec":{}})");
  EXPECT_EQ(noname.status, 400);
  EXPECT_NE(Str(noname.json, "message").find("virtualNodeName is required"),
            std::string::npos);

  Reply nospec = Call("PUT", "/v20190125/meshes/shop/virtualServices",
                      R"({"virtualServiceName":"a.b"})");
  EXPECT_EQ(nospec.status, 400);
  EXPECT_NE(Str(nospec.json, "message").find("spec is required"),
            std::string::npos);

  Reply unknown = Call("GET", "/v20190125/widgets");
  EXPECT_EQ(unknown.status, 404);
  EXPECT_EQ(unknown.error_type, "UnknownOperationException");

  Reply method = Call("POST", "/v20190125/meshes/shop");
  EXPECT_EQ(method.status, 405);
  EXPECT_NE(Str(method.json, "message").find("GET, PUT or DELETE"),
            std::string::npos);

  Reply limit = Call("GET", "/v20190125/meshes?limit=101");
  EXPECT_EQ(limit.status, 400);
  EXPECT_NE(Str(limit.json, "message").find("ListMeshes: limit must be 1..100"),
            std::string::npos);
}

TEST_F(AppMeshApiTest, ListPaginatesWithNextToken) {
  MakeMesh();
  for (const char* n : {"a", "b", "c", "d", "e"}) {
    ASSERT_EQ(
        Call("PUT", "/v20190125/meshes/shop/virtualNodes",
             std::string(R"({"virtualNodeName":")") + n + R"(","spec":{}})")
            .status,
        200);
  }
  std::vector<std::string> seen;
  std::string token;
  int pages = 0;
  do {
    Reply r = Call("GET", "/v20190125/meshes/shop/virtualNodes?limit=2" +
                              (token.empty() ? "" : "&nextToken=" + token));
    ASSERT_EQ(r.status, 200) << r.body;
    ++pages;
    for (const auto& ref : r.json["virtualNodes"].GetArray()) {
      seen.push_back(Str(ref, "virtualNodeName"));
      EXPECT_EQ(Str(ref, "meshName"), "shop");
      EXPECT_TRUE(ref.HasMember("arn") && ref.HasMember("createdAt") &&
                  ref.HasMember("lastUpdatedAt") && ref.HasMember("version") &&
                  ref.HasMember("meshOwner") && ref.HasMember("resourceOwner"));
      EXPECT_FALSE(ref.HasMember("spec"));
    }
    token = Str(r.json, "nextToken");
    if (token == "<>") token.clear();
  } while (!token.empty() && pages < 10);
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(seen, (std::vector<std::string>{"a", "b", "c", "d", "e"}));

  Reply all = Call("GET", "/v20190125/meshes");
  ASSERT_EQ(all.status, 200);
  EXPECT_EQ(all.json["meshes"].Size(), 1u);
  EXPECT_FALSE(all.json.HasMember("nextToken"));
}

TEST_F(AppMeshApiTest, RoutesLiveUnderTheirRouter) {
  MakeMesh();
  ASSERT_EQ(Call("PUT", "/v20190125/meshes/shop/virtualRouters",
                 R"({"virtualRouterName":"vr","spec":{}})")
                .status,
            200);
  Reply c = Call("PUT", "/v20190125/meshes/shop/virtualRouter/vr/routes",
                 R"({"routeName":"r1","spec":{"priority":1}})");
  ASSERT_EQ(c.status, 200) << c.body;
  EXPECT_EQ(Str(c.json, "virtualRouterName"), "vr");
  EXPECT_EQ(Str(c.json, "routeName"), "r1");
  EXPECT_EQ(Str(c.json["metadata"], "arn"),
            "arn:aws:appmesh:us-west-2:111122223333:mesh/shop/virtualRouter/vr/"
            "route/r1");
  Reply l = Call("GET", "/v20190125/meshes/shop/virtualRouter/vr/routes");
  ASSERT_EQ(l.status, 200);
  ASSERT_EQ(l.json["routes"].Size(), 1u);
  EXPECT_EQ(Str(l.json["routes"][0], "virtualRouterName"), "vr");
  EXPECT_EQ(
      Call("GET", "/v20190125/meshes/shop/virtualRouter/vr/routes/r1").status,
      200);

  Reply busy = Call("DELETE", "/v20190125/meshes/shop/virtualRouters/vr");
  EXPECT_EQ(busy.status, 409);
  EXPECT_EQ(busy.error_type, "ResourceInUseException");

  Reply orphan = Call("PUT", "/v20190125/meshes/shop/virtualRouter/none/routes",
                      R"({"routeName":"r","spec":{}})");
  EXPECT_EQ(orphan.status, 404);
}

TEST_F(AppMeshApiTest, GatewayRoutesAndEncodedNames) {
  MakeMesh();
  ASSERT_EQ(Call("PUT", "/v20190125/meshes/shop/virtualGateways",
                 R"({"virtualGatewayName":"gw","spec":{"listeners":[]}})")
                .status,
            200);
  Reply c =
      Call("PUT", "/v20190125/meshes/shop/virtualGateway/gw/gatewayRoutes",
           R"({"gatewayRouteName":"to web","spec":{}})");
  ASSERT_EQ(c.status, 200) << c.body;
  EXPECT_EQ(Str(c.json, "virtualGatewayName"), "gw");
  Reply d = Call(
      "GET", "/v20190125/meshes/shop/virtualGateway/gw/gatewayRoutes/to%20web");
  ASSERT_EQ(d.status, 200) << d.body;
  EXPECT_EQ(Str(d.json, "gatewayRouteName"), "to web");
  Reply l = Call("GET", "/v20190125/meshes/shop/virtualGateways");
  EXPECT_EQ(Str(l.json["virtualGateways"][0], "virtualGatewayName"), "gw");
  ASSERT_EQ(Call("PUT", "/v20190125/meshes/shop/virtualServices",
                 R"({"virtualServiceName":"web.shop.local","spec":{}})")
                .status,
            200);
  EXPECT_EQ(Call("GET", "/v20190125/meshes/shop/virtualServices/web.shop.local")
                .status,
            200);
}

TEST_F(AppMeshApiTest, TagsByArn) {
  ASSERT_EQ(Call("PUT", "/v20190125/meshes",
                 R"({"meshName":"shop","tags":[{"key":"team","value":"a"}]})")
                .status,
            200);
  const std::string arn =
      "resourceArn=arn%3Aaws%3Aappmesh%3Aus-west-2%3A111122223333%3Amesh%"
      "2Fshop";
  Reply t = Call("PUT", "/v20190125/tag?" + arn,
                 R"({"tags":[{"key":"env","value":"dev"},)"
                 R"({"key":"team","value":"b"}]})");
  ASSERT_EQ(t.status, 200) << t.body;
  Reply l = Call("GET", "/v20190125/tags?" + arn);
  ASSERT_EQ(l.status, 200);
  ASSERT_EQ(l.json["tags"].Size(), 2u);
  EXPECT_EQ(Str(l.json["tags"][0], "value"), "b");
  Reply page = Call("GET", "/v20190125/tags?limit=1&" + arn);
  EXPECT_EQ(page.json["tags"].Size(), 1u);
  EXPECT_EQ(Str(page.json, "nextToken"), "1");
  ASSERT_EQ(
      Call("PUT", "/v20190125/untag?" + arn, R"({"tagKeys":["team"]})").status,
      200);
  l = Call("GET", "/v20190125/tags?" + arn);
  ASSERT_EQ(l.json["tags"].Size(), 1u);
  EXPECT_EQ(Str(l.json["tags"][0], "key"), "env");
  Reply badarn = Call("GET", "/v20190125/tags?resourceArn=nope");
  EXPECT_EQ(badarn.status, 400);
  Reply missing = Call(
      "GET",
      "/v20190125/tags?resourceArn=arn:aws:appmesh:r:1:mesh/x/virtualNode/y");
  EXPECT_EQ(missing.status, 404);
}

TEST_F(AppMeshApiTest, SigV4WithoutCredentialsIsReadOnly) {
  MakeMesh();
  UseAuth(ApiAuthConfig::Mode::kSigV4, std::nullopt);
  EXPECT_EQ(Call("GET", "/v20190125/meshes/shop").status, 200);
  Reply w = Call("DELETE", "/v20190125/meshes/shop");
  EXPECT_EQ(w.status, 403);
  EXPECT_EQ(w.error_type, "ForbiddenException");
  EXPECT_NE(Str(w.json, "message").find("--api_credentials_file"),
            std::string::npos);
  EXPECT_NE(Str(w.json, "message").find("--api_auth=none"), std::string::npos);
}

TEST_F(AppMeshApiTest, SigV4WithCredentialsChecksEveryRequest) {
  auto creds = CredentialSet::Parse(
      "[default]\naws_access_key_id = AKIDNODEMESH\n"
      "aws_secret_access_key = c2VjcmV0/Key+Example\n",
      "creds.ini");
  ASSERT_TRUE(creds.ok());
  UseAuth(ApiAuthConfig::Mode::kSigV4, std::move(*creds));
  struct tm tm = {};
  tm.tm_year = 124;
  tm.tm_mon = 4;
  tm.tm_mday = 1;
  tm.tm_hour = 10;
  auto at = std::chrono::system_clock::from_time_t(timegm(&tm));
  api_->set_clock([at] { return at; });

  Reply unsigned_read = Call("GET", "/v20190125/meshes");
  EXPECT_EQ(unsigned_read.status, 403);
  EXPECT_EQ(unsigned_read.error_type, "MissingAuthenticationTokenException");

  // Signed by botocore (see sigv4_test.cc).
  const std::string body = R"({"meshName":"shop","clientToken":"abc"})";
  std::vector<std::pair<std::string, std::string>> headers = {
      {"Host", "127.0.0.1:15000"},
      {"Content-Type", "application/json"},
      {"X-Amz-Date", "20240501T100000Z"},
      {"Authorization",
       "AWS4-HMAC-SHA256 "
       "Credential=AKIDNODEMESH/20240501/us-west-2/appmesh/aws4_request, "
       "SignedHeaders=content-type;host;x-amz-date, "
       "Signature="
       "30f952ff2175740448c7560e5b3b4d95d20543ce1194e53d2c3821b23f1741cb"}};
  Reply ok = Call("PUT", "/v20190125/meshes", body, headers);
  EXPECT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(store_.size(), 1u);

  Reply tampered = Call("PUT", "/v20190125/meshes",
                        R"({"meshName":"evil","clientToken":"abc"})", headers);
  EXPECT_EQ(tampered.status, 403);
  EXPECT_EQ(tampered.error_type, "InvalidSignatureException");
  EXPECT_EQ(store_.size(), 1u);
}

TEST(AppMeshApiCreateTest, UnreadableCredentialsFileFails) {
  testing::MemoryResourceStore store;
  ApiAuthConfig auth;
  auth.credentials_file = "/nonexistent/credentials";
  auto api = AppMeshApi::Create(&store, auth);
  ASSERT_FALSE(api.ok());
  EXPECT_NE(api.status().message().find("/nonexistent/credentials"),
            std::string::npos);
}

TEST(ArnTest, ParsesEveryKind) {
  auto id = ResourceIdFromArn(
      "arn:aws:appmesh:us-west-2:1:mesh/shop/virtualGateway/gw/gatewayRoute/r");
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(id->ToString(), "GatewayRoute shop/gw/r");
  id = ResourceIdFromArn(
      "arn:aws:appmesh:us-west-2:1:mesh/shop/virtualService/a.b");
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(id->kind, model::ResourceKind::kVirtualService);
  EXPECT_FALSE(ResourceIdFromArn("arn:aws:s3:::bucket").ok());
  EXPECT_FALSE(ResourceIdFromArn("arn:aws:appmesh:r:1:mesh/shop/route/x").ok());
}

}  // namespace
}  // namespace nodemesh::api
