// The App Mesh API driven by the real AWS CLI (/usr/bin/aws), the way users
// and scripts call it: `aws appmesh ... --endpoint-url http://127.0.0.1:P`.
// All traffic stays on 127.0.0.1; the CLI reads only files made here.

#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "agent/admin/admin_server.h"
#include "agent/api/appmesh_api.h"
#include "agent/model/json.h"
#include "agent/net/event_loop.h"
#include "gtest/gtest.h"
#include "tests/unit/api/memory_resource_store.h"

namespace nodemesh::api {
namespace {

constexpr char kAws[] = "/usr/bin/aws";
constexpr char kKeyId[] = "AKIDNODEMESHTEST";
constexpr char kSecret[] = "s3cr3t/For+CLI+test";

struct CliResult {
  int exit_code = -1;
  std::string out;
  std::string err;
  rapidjson::Document json;
};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out.push_back(c);
    }
  }
  return out + "'";
}

class AwsCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (access(kAws, X_OK) != 0) GTEST_SKIP() << kAws << " not installed";
    char tmpl[] = "/tmp/nodemesh-api-cli-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    std::ofstream(dir_ + "/config") << "[default]\nregion = us-west-2\n";
    std::ofstream(dir_ + "/credentials")
        << "[default]\naws_access_key_id = " << kKeyId
        << "\naws_secret_access_key = " << kSecret << "\n";
  }

  void TearDown() override {
    if (loop_) {
      std::promise<void> done;
      loop_->Post([&] {
        server_.reset();
        done.set_value();
      });
      done.get_future().wait();
      loop_->Stop();
      runner_.join();
    }
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  void Start(const ApiAuthConfig& auth) {
    auto loop = net::EventLoop::Create();
    ASSERT_TRUE(loop.ok()) << loop.status();
    loop_ = std::move(*loop);
    auto api = AppMeshApi::Create(&store_, auth);
    ASSERT_TRUE(api.ok()) << api.status();
    api_ = std::move(*api);
    server_ = std::make_unique<admin::AdminServer>(loop_.get());
    api_->Register(server_.get());
    absl::Status st =
        server_->Listen(*net::SocketAddress::Parse("127.0.0.1:0"));
    ASSERT_TRUE(st.ok()) << st;
    port_ = server_->bound_port();
    runner_ = std::thread([this] { loop_->Run(); });
  }

  // Runs `aws appmesh <args>` in a clean environment. `sign`: with the key
  // in env (secret overridable); else --no-sign-request.
  CliResult Aws(const std::string& args, bool sign = false,
                const std::string& secret = kSecret) {
    std::string env =
        "env -i PATH=/usr/bin:/bin HOME=" + Quote(dir_) +
        " AWS_CONFIG_FILE=" + Quote(dir_ + "/config") +
        " AWS_SHARED_CREDENTIALS_FILE=" + Quote(dir_ + "/cli-credentials") +
        " AWS_EC2_METADATA_DISABLED=true"
        " AWS_PAGER= LC_ALL=C.UTF-8";
    if (sign) {
      env += std::string(" AWS_ACCESS_KEY_ID=") + kKeyId +
             " AWS_SECRET_ACCESS_KEY=" + Quote(secret);
    }
    std::string cmd =
        env + " " + kAws + " appmesh " + args +
        " --endpoint-url http://127.0.0.1:" + std::to_string(port_) +
        " --region us-west-2 --output json" +
        (sign ? "" : " --no-sign-request") + " >" + Quote(dir_ + "/out") +
        " 2>" + Quote(dir_ + "/err");
    CliResult r;
    int status = std::system(cmd.c_str());
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.out = ReadFile(dir_ + "/out");
    r.err = ReadFile(dir_ + "/err");
    if (!r.out.empty()) r.json.Parse(r.out.c_str());
    return r;
  }

  std::string WriteInput(const std::string& name, const std::string& json) {
    std::string path = dir_ + "/" + name;
    std::ofstream(path) << json;
    return "file://" + path;
  }

  std::string dir_;
  testing::MemoryResourceStore store_;
  std::unique_ptr<net::EventLoop> loop_;
  std::unique_ptr<AppMeshApi> api_;
  std::unique_ptr<admin::AdminServer> server_;
  std::thread runner_;
  uint16_t port_ = 0;
};

std::string S(const rapidjson::Value& v) {
  return v.IsString() ? v.GetString() : "<not a string>";
}

TEST_F(AwsCliTest, UnsignedLifecycle) {
  ApiAuthConfig auth;
  auth.mode = ApiAuthConfig::Mode::kNone;
  Start(auth);

  CliResult mesh = Aws("create-mesh --mesh-name shop");
  ASSERT_EQ(mesh.exit_code, 0) << mesh.err;
  ASSERT_TRUE(mesh.json.IsObject()) << mesh.out;
  EXPECT_EQ(S(mesh.json["mesh"]["meshName"]), "shop");
  EXPECT_EQ(S(mesh.json["mesh"]["status"]["status"]), "ACTIVE");
  EXPECT_EQ(mesh.json["mesh"]["metadata"]["version"].GetInt(), 1);
  EXPECT_TRUE(mesh.json["mesh"]["metadata"]["createdAt"].IsString());

  std::string input = WriteInput(
      "node.json",
      R"({"meshName":"shop","virtualNodeName":"front","spec":{"listeners":)"
      R"([{"portMapping":{"port":8080,"protocol":"http"}}],)"
      R"("serviceDiscovery":{"dns":{"hostname":"front.shop.local"}}},)"
      R"("tags":[{"key":"team","value":"web"}]})");
  CliResult node = Aws("create-virtual-node --cli-input-json " + input);
  ASSERT_EQ(node.exit_code, 0) << node.err;
  const rapidjson::Value& vn = node.json["virtualNode"];
  EXPECT_EQ(S(vn["virtualNodeName"]), "front");
  EXPECT_EQ(vn["spec"]["listeners"][0]["portMapping"]["port"].GetInt(), 8080);
  EXPECT_EQ(S(vn["metadata"]["arn"]),
            "arn:aws:appmesh:us-west-2:111122223333:mesh/shop/virtualNode/"
            "front");

  CliResult desc =
      Aws("describe-virtual-node --mesh-name shop --virtual-node-name front");
  ASSERT_EQ(desc.exit_code, 0) << desc.err;
  EXPECT_EQ(S(desc.json["virtualNode"]["spec"]["serviceDiscovery"]["dns"]
                       ["hostname"]),
            "front.shop.local");

  for (const char* n : {"b", "c", "d", "e"}) {
    CliResult r = Aws(std::string("create-virtual-node --mesh-name shop "
                                  "--virtual-node-name ") +
                      n + " --spec '{}'");
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  // The CLI follows nextToken across pages of 2.
  CliResult all = Aws("list-virtual-nodes --mesh-name shop --page-size 2");
  ASSERT_EQ(all.exit_code, 0) << all.err;
  ASSERT_EQ(all.json["virtualNodes"].Size(), 5u) << all.out;
  EXPECT_EQ(S(all.json["virtualNodes"][0]["virtualNodeName"]), "b");
  EXPECT_EQ(S(all.json["virtualNodes"][4]["virtualNodeName"]), "front");
  CliResult some =
      Aws("list-virtual-nodes --mesh-name shop --page-size 2 --max-items 3");
  ASSERT_EQ(some.exit_code, 0) << some.err;
  EXPECT_EQ(some.json["virtualNodes"].Size(), 3u) << some.out;
  EXPECT_TRUE(some.json.HasMember("NextToken")) << some.out;

  CliResult tags =
      Aws("list-tags-for-resource --resource-arn "
          "arn:aws:appmesh:us-west-2:111122223333:mesh/shop/virtualNode/front");
  ASSERT_EQ(tags.exit_code, 0) << tags.err;
  EXPECT_EQ(S(tags.json["tags"][0]["key"]), "team");

  CliResult upd =
      Aws("update-virtual-node --mesh-name shop --virtual-node-name front "
          "--spec '{\"listeners\":[{\"portMapping\":{\"port\":9090,"
          "\"protocol\":\"http\"}}]}'");
  ASSERT_EQ(upd.exit_code, 0) << upd.err;
  EXPECT_EQ(upd.json["virtualNode"]["metadata"]["version"].GetInt(), 2);
  EXPECT_EQ(
      upd.json["virtualNode"]["spec"]["listeners"][0]["portMapping"]["port"]
          .GetInt(),
      9090);

  CliResult del =
      Aws("delete-virtual-node --mesh-name shop --virtual-node-name front");
  ASSERT_EQ(del.exit_code, 0) << del.err;
  EXPECT_EQ(S(del.json["virtualNode"]["status"]["status"]), "DELETED");

  CliResult gone =
      Aws("describe-virtual-node --mesh-name shop --virtual-node-name front");
  EXPECT_NE(gone.exit_code, 0);
  EXPECT_NE(gone.err.find("An error occurred (NotFoundException) when calling "
                          "the DescribeVirtualNode operation: VirtualNode "
                          "shop/front not found"),
            std::string::npos)
      << gone.err;

  CliResult dup = Aws("create-mesh --mesh-name shop");
  EXPECT_NE(dup.exit_code, 0);
  EXPECT_NE(dup.err.find("An error occurred (ConflictException) when calling "
                         "the CreateMesh operation: Mesh shop already exists"),
            std::string::npos)
      << dup.err;

  CliResult busy = Aws("delete-mesh --mesh-name shop");
  EXPECT_NE(busy.exit_code, 0);
  EXPECT_NE(busy.err.find("(ResourceInUseException)"), std::string::npos)
      << busy.err;
}

TEST_F(AwsCliTest, SignedRequestsNeedTheRightSecret) {
  ApiAuthConfig auth;
  auth.credentials_file = dir_ + "/credentials";
  Start(auth);

  CliResult ok = Aws("create-mesh --mesh-name shop", /*sign=*/true);
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_EQ(S(ok.json["mesh"]["meshName"]), "shop");

  CliResult list = Aws("list-meshes", /*sign=*/true);
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_EQ(list.json["meshes"].Size(), 1u);

  CliResult wrong =
      Aws("create-mesh --mesh-name other", /*sign=*/true, "wrong-secret");
  EXPECT_NE(wrong.exit_code, 0);
  EXPECT_NE(wrong.err.find("An error occurred (InvalidSignatureException) "
                           "when calling the CreateMesh operation: The "
                           "request signature we calculated does not match"),
            std::string::npos)
      << wrong.err;

  CliResult anon = Aws("list-meshes");
  EXPECT_NE(anon.exit_code, 0);
  EXPECT_NE(anon.err.find("(MissingAuthenticationTokenException)"),
            std::string::npos)
      << anon.err;
  EXPECT_EQ(store_.size(), 1u);
}

TEST_F(AwsCliTest, NoCredentialsFileMeansReadOnly) {
  Start(ApiAuthConfig{});
  CliResult list = Aws("list-meshes");
  ASSERT_EQ(list.exit_code, 0) << list.err;
  CliResult write = Aws("create-mesh --mesh-name shop");
  EXPECT_NE(write.exit_code, 0);
  EXPECT_NE(write.err.find("An error occurred (ForbiddenException) when "
                           "calling the CreateMesh operation: the App Mesh "
                           "API on this agent is read-only"),
            std::string::npos)
      << write.err;
}

}  // namespace
}  // namespace nodemesh::api
