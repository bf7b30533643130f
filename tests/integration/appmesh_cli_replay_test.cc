// Walkthroughs of ../shared/appmesh-examples replayed with the real AWS CLI
// (/usr/bin/aws) against a running nodemesh-agent, as the walkthrough
// scripts do: create-* in dependency order with --cli-input-json, names
// picked to match the specs' references; then describe-* prints what was
// created, and the config dir rejects an invalid edit while /config_dump
// keeps serving the previous snapshot.

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/integration/agent_process.h"
#include "tests/integration/fixtures.h"

namespace nodemesh::testing {
namespace {

namespace fs = std::filesystem;

const std::string kExamples = NODEMESH_EXAMPLES_DIR;

struct Step {
  std::string command;  // e.g. "create-virtual-node"
  std::string names;    // the CLI's name flags
  std::string file;     // relative to the walkthrough dir; "" for none
};

class AppMeshCliReplayTest : public ::testing::Test {
 protected:
  AppMeshCliReplayTest()
      : name_(UniqueName("cli")),
        parent_(Cgroup2Mount() + "/" + name_),
        pin_dir_("/sys/fs/bpf/" + name_),
        admin_(absl::StrCat("127.0.0.1:", PickPort())),
        config_dir_("/tmp/" + name_ + "-config"),
        home_("/tmp/" + name_ + "-home") {}

  void SetUp() override {
    if (::access("/usr/bin/aws", X_OK) != 0) GTEST_SKIP() << "no /usr/bin/aws";
    if (!fs::exists(kExamples)) GTEST_SKIP() << "no " << kExamples;
    fs::create_directories(home_);
    agent_ = std::make_unique<AgentProcess>(
        ns_.fd(), std::vector<std::string>{
                      "--cgroup_root=" + parent_.path() + "/workloads",
                      "--agent_cgroup=" + parent_.path() + "/agent",
                      "--bpf_pin_dir=" + pin_dir_, "--admin_address=" + admin_,
                      "--config_dir=" + config_dir_, "--api_auth=none",
                      "--outbound_port=" + std::to_string(PickPort())});
    ASSERT_TRUE(agent_->WaitHealthy(admin_))
        << RunCommand("cat " + agent_->log_path());
  }

  ~AppMeshCliReplayTest() override {
    if (agent_) agent_->Terminate();
    AgentProcess cleanup(-1, {"--cleanup", "--bpf_pin_dir=" + pin_dir_,
                              "--cgroup_root=" + parent_.path() + "/workloads",
                              "--agent_cgroup=" + parent_.path() + "/agent"});
    cleanup.WaitExit();
    fs::remove_all(config_dir_);
    fs::remove_all(home_);
  }

  // Runs `aws appmesh ARGS` in the agent's network namespace; the CLI's own
  // configuration is a fresh HOME so nothing of the machine's leaks in.
  std::string Aws(const std::string& args, int* rc) {
    return RunCommand(
        absl::StrCat(
            "nsenter --net=/proc/", agent_->pid(), "/ns/net env -i HOME=",
            home_, " PATH=/usr/bin:/bin AWS_CONFIG_FILE=", home_,
            "/config AWS_SHARED_CREDENTIALS_FILE=", home_,
            "/credentials AWS_EC2_METADATA_DISABLED=true /usr/bin/aws appmesh ",
            args, " --endpoint-url http://", admin_,
            " --region us-west-2 --no-sign-request --output json 2>&1"),
        rc);
  }

  void Replay(const std::string& walkthrough, const std::vector<Step>& steps) {
    for (const auto& s : steps) {
      std::string args = s.command + " " + s.names;
      if (!s.file.empty())
        args += " --cli-input-json file://" + kExamples + "/walkthroughs/" +
                walkthrough + "/" + s.file;
      int rc = -1;
      std::string out = Aws(args, &rc);
      ASSERT_EQ(rc, 0) << "aws appmesh " << args << "\n" << out;
    }
  }

  nlohmann::json Describe(const std::string& args) {
    int rc = -1;
    std::string out = Aws(args, &rc);
    EXPECT_EQ(rc, 0) << out;
    return nlohmann::json::parse(out, nullptr, false);
  }

  std::string name_;
  CgroupScope parent_;
  std::string pin_dir_, admin_, config_dir_, home_;
  NetnsScope ns_;
  std::unique_ptr<AgentProcess> agent_;
};

TEST_F(AppMeshCliReplayTest, IngressGatewayWithWeightedRoutesAndTls) {
  const std::string m = "--mesh-name howto-ingress-gateway ";
  Replay(
      "howto-ingress-gateway",
      {{"create-mesh", m, "mesh/mesh.json"},
       {"create-virtual-node", m + "--virtual-node-name colorteller-black-vn",
        "mesh/colorteller-black-vn.json"},
       {"create-virtual-node", m + "--virtual-node-name colorteller-red-vn",
        "mesh/colorteller-red-vn.json"},
       {"create-virtual-node", m + "--virtual-node-name colorteller-white-vn",
        "mesh/colorteller-white-vn.json"},
       {"create-virtual-router", m + "--virtual-router-name colorteller-vr-1",
        "mesh/colorteller-vr-1.json"},
       {"create-route",
        m + "--virtual-router-name colorteller-vr-1 --route-name "
            "colorteller-route",
        "mesh/colorteller-route-2.json"},
       {"create-virtual-service",
        m + "--virtual-service-name colorteller-1.howto-ingress-gateway.local",
        "mesh/colorteller-vs-1.json"},
       {"create-virtual-gateway", m + "--virtual-gateway-name colorgateway",
        "mesh/colorgateway-vg.json"},
       {"create-gateway-route",
        m + "--virtual-gateway-name colorgateway --gateway-route-name color1",
        "mesh/colorgateway-route-1.json"}});

  auto route = Describe(
      "describe-route " + m +
      "--virtual-router-name colorteller-vr-1 --route-name colorteller-route");
  const auto& targets =
      route["route"]["spec"]["httpRoute"]["action"]["weightedTargets"];
  ASSERT_EQ(targets.size(), 2u) << route.dump();
  EXPECT_EQ(targets[0]["virtualNode"], "colorteller-black-vn");
  EXPECT_EQ(targets[1]["virtualNode"], "colorteller-red-vn");
  EXPECT_EQ(route["route"]["status"]["status"], "ACTIVE");

  auto gateway = Describe("describe-virtual-gateway " + m +
                          "--virtual-gateway-name colorgateway");
  EXPECT_EQ(gateway["virtualGateway"]["spec"]["listeners"][0]["tls"]["mode"],
            "STRICT")
      << gateway.dump();
  auto nodes = Describe("list-virtual-nodes " + m);
  EXPECT_EQ(nodes["virtualNodes"].size(), 3u);

  // What the API wrote is the agent's model: /config_dump serves it.
  auto dump = nlohmann::json::parse(agent_->Get(admin_, "/config_dump"));
  EXPECT_EQ(dump["resources"].size(), 9u) << dump.dump();
  EXPECT_TRUE(fs::exists(config_dir_ +
                         "/api/howto-ingress-gateway/Route/colorteller-vr-1/"
                         "colorteller-route.json"));
}

TEST_F(AppMeshCliReplayTest, MutualTlsFileProvidedWithUpdates) {
  const std::string m = "--mesh-name howto-mutual-tls-file-provided ";
  Replay(
      "howto-mutual-tls-file-provided",
      {{"create-mesh", m, ""},
       {"create-virtual-node", m + "--virtual-node-name colorteller-vn",
        "mesh/updates/colorteller-vn-strict-tls.json"},
       {"create-virtual-service",
        m + "--virtual-service-name "
            "colorteller.howto-mutual-tls-file-provided.local",
        "mesh/colorteller-vs.json"},
       {"create-virtual-gateway", m + "--virtual-gateway-name gateway",
        "mesh/gateway-vgw.json"},
       {"create-gateway-route",
        m + "--virtual-gateway-name gateway --gateway-route-name colorteller",
        "mesh/colorteller-gwroute.json"},
       {"update-virtual-node", m + "--virtual-node-name colorteller-vn",
        "mesh/updates/colorteller-vn-strict-validation.json"},
       {"update-virtual-gateway", m + "--virtual-gateway-name gateway",
        "mesh/updates/gateway-vgw-client-cert.json"}});
  auto node = Describe("describe-virtual-node " + m +
                       "--virtual-node-name colorteller-vn");
  const auto& tls = node["virtualNode"]["spec"]["listeners"][0]["tls"];
  EXPECT_EQ(tls["mode"], "STRICT") << node.dump();
  EXPECT_TRUE(tls.contains("validation")) << node.dump();
  EXPECT_EQ(node["virtualNode"]["metadata"]["version"], 2);
  auto gw = Describe("describe-virtual-gateway " + m +
                     "--virtual-gateway-name gateway");
  EXPECT_TRUE(
      gw["virtualGateway"]["spec"]["backendDefaults"]["clientPolicy"].contains(
          "tls"))
      << gw.dump();
}

TEST_F(AppMeshCliReplayTest, TimeoutPolicyRouterAndInvalidEditsAreRefused) {
  const std::string m = "--mesh-name howto-timeout-policy ";
  Replay("howto-timeout-policy",
         {{"create-mesh", m, "mesh/mesh.json"},
          {"create-virtual-node", m + "--virtual-node-name ColorTellerWhite",
           "mesh/colorteller-white-vn.json"},
          {"create-virtual-node", m + "--virtual-node-name ColorTellerRed",
           "mesh/colorteller-vn.json"},
          {"create-virtual-router", m + "--virtual-router-name colorteller-vr",
           "mesh/colorteller-vr.json"},
          {"create-route",
           m + "--virtual-router-name colorteller-vr --route-name "
               "colorteller-route",
           "mesh/colorteller-route1.json"},
          {"create-route",
           m + "--virtual-router-name colorteller-vr --route-name "
               "colorteller-route2",
           "mesh/colorteller-route2.json"},
          {"create-virtual-service",
           m + "--virtual-service-name colorteller.howto-timeout-policy.local",
           "mesh/colorteller-vs.json"},
          {"create-virtual-node", m + "--virtual-node-name colorgateway",
           "mesh/colorgateway-vn-timeout20s.json"},
          {"update-route",
           m + "--virtual-router-name colorteller-vr --route-name "
               "colorteller-route",
           "mesh/colorteller-route-timeout20s.json"}});
  auto route = Describe("describe-route " + m +
                        "--virtual-router-name colorteller-vr --route-name "
                        "colorteller-route");
  EXPECT_EQ(
      route["route"]["spec"]["httpRoute"]["timeout"]["perRequest"]["value"], 20)
      << route.dump();

  // An API write that breaks a reference: refused, with the field.
  int rc = 0;
  std::string out = Aws(
      "delete-virtual-node " + m + "--virtual-node-name ColorTellerRed", &rc);
  EXPECT_NE(rc, 0);
  EXPECT_NE(out.find("ResourceInUseException"), std::string::npos) << out;
  EXPECT_NE(out.find("weightedTargets[0].virtualNode"), std::string::npos)
      << out;

  // An invalid edit of a live config dir: rejected with its location, the
  // previous snapshot keeps serving.
  auto before = nlohmann::json::parse(agent_->Get(admin_, "/config_dump"));
  std::ofstream(config_dir_ + "/broken.json")
      << R"({"meshName": "howto-timeout-policy", "virtualRouterName": "r",
            "spec": {"listeners": [{"portMapping": {"port": 80,
            "protocol": "smtp"}}]}})";
  std::string ready;
  for (int i = 0; i < 100; ++i) {
    ready = agent_->Get(admin_, "/ready");
    if (ready.find("broken.json") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_NE(ready.find("broken.json"), std::string::npos) << ready;
  EXPECT_NE(ready.find("spec.listeners[0].portMapping.protocol"),
            std::string::npos)
      << ready;
  auto after = nlohmann::json::parse(agent_->Get(admin_, "/config_dump"));
  EXPECT_EQ(after["version"], before["version"]);
  EXPECT_EQ(after["hash"], before["hash"]);
  EXPECT_NE(agent_->Get(admin_, "/metrics")
                .find("nodemesh_config_reloads_total{result=\"error\"} 1"),
            std::string::npos);

  // A resource a user's file defines is not the API's to change.
  out = Aws("delete-virtual-router " + m + "--virtual-router-name r", &rc);
  EXPECT_NE(out.find("NotFoundException"), std::string::npos) << out;
  fs::remove(config_dir_ + "/broken.json");
  std::ofstream(config_dir_ + "/user.json")
      << R"({"meshName": "howto-timeout-policy", "virtualServiceName": "user.local",
            "spec": {}})";
  for (int i = 0; i < 100; ++i) {
    out =
        Aws("delete-virtual-service " + m + "--virtual-service-name user.local",
            &rc);
    if (out.find("ConflictException") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_NE(out.find("ConflictException"), std::string::npos) << out;
  EXPECT_NE(out.find("user.json"), std::string::npos) << out;
}

}  // namespace
}  // namespace nodemesh::testing
