// Access logs with a real agent, real upstreams and real clients: a virtual
// node with a text format, one with a JSON format, a gateway with Envoy's
// default format and a tcpRoute node. Every line parses, the counts equal
// the requests sent, and code, path and bytes are those of each request.
//
// Ports unique to this file: router 8471, tcpRoute router 7471, VIP
// 127.10.4.71.

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "agent/datapath/datapath_maps.h"
#include "gtest/gtest.h"
#include "tests/integration/proxy_fixture.h"

namespace nodemesh::testing {
namespace {

using appmesh::Node;
using nlohmann::json;

constexpr uint16_t kRouterPort = 8471;
constexpr uint16_t kTcpRouterPort = 7471;

std::vector<std::string> Lines(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  std::vector<std::string> lines;
  if (text.empty()) return lines;
  EXPECT_EQ(text.back(), '\n') << path << ": the last line is cut";
  for (absl::string_view l : absl::StrSplit(text, '\n')) {
    if (!l.empty()) lines.emplace_back(l);
  }
  return lines;
}

// The lines of `path` once there are `want` of them (the workers write at
// the end of their event batch, which may come just after curl returns).
std::vector<std::string> WaitLines(const std::string& path, size_t want) {
  std::vector<std::string> lines;
  for (int i = 0; i < 50; ++i) {
    lines = Lines(path);
    if (lines.size() >= want) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  // Nothing more arrives later.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  return Lines(path);
}

uint64_t Metric(const std::string& metrics, const std::string& name) {
  for (absl::string_view line : absl::StrSplit(metrics, '\n')) {
    if (!absl::StartsWith(line, name + " ")) continue;
    uint64_t v = 0;
    if (absl::SimpleAtoi(line.substr(name.size() + 1), &v)) return v;
  }
  return UINT64_MAX;
}

json WithLog(json node, json file) {
  node["spec"]["logging"]["accessLog"]["file"] = std::move(file);
  return node;
}

class ProxyAccessLogTest : public ::testing::Test {
 protected:
  ProxyAccessLogTest() : dir_("/tmp/" + UniqueName("access-logs")) {
    std::filesystem::create_directories(dir_);
  }
  ~ProxyAccessLogTest() override { std::filesystem::remove_all(dir_); }

  // Status code of one curl request through the outbound listener.
  int Outbound(const std::string& host, const std::string& path,
               const std::string& args = "") {
    std::string code = node_.Curl(absl::StrCat(
        "-o /dev/null -w '%{http_code}' -H 'Host: ", host, "' ", args,
        " 'http://127.0.0.1:", node_.outbound_port(), path, "'"));
    int c = 0;
    (void)absl::SimpleAtoi(code, &c);
    return c;
  }
  int Gateway(const std::string& path) {
    std::string code = node_.Curl(absl::StrCat(
        "-o /dev/null -w '%{http_code}' 'http://127.0.0.1:", gw_port_, path,
        "'"));
    int c = 0;
    (void)absl::SimpleAtoi(code, &c);
    return c;
  }

  std::string dir_;
  ProxyNode node_;
  uint16_t gw_port_ = PickPort();
};

// What the test expects on the line of one request, by path.
struct Want {
  int code;
  int64_t received;
  int64_t sent;
};

TEST_F(ProxyAccessLogTest, TextJsonAndDefaultLinesMatchTheRequestsSent) {
  Upstreams* up = node_.AddUpstreams({{"txt"}, {"js"}});
  const std::string txt_log = dir_ + "/txt.log";
  const std::string js_log = dir_ + "/js.log";
  const std::string gw_log = dir_ + "/gw.log";
  json gateway = appmesh::Gateway("gw", gw_port_);
  gateway["spec"]["logging"]["accessLog"]["file"] = {{"path", gw_log}};
  json js_format = json::array();
  for (auto [k, v] : std::vector<std::pair<std::string, std::string>>{
           {"start", "%START_TIME%"},
           {"method", "%REQ(:METHOD)%"},
           {"path", "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%"},
           {"code", "%RESPONSE_CODE%"},
           {"flags", "%RESPONSE_FLAGS%"},
           {"details", "%RESPONSE_CODE_DETAILS%"},
           {"rx", "%BYTES_RECEIVED%"},
           {"tx", "%BYTES_SENT%"},
           {"duration", "%DURATION%"},
           {"upstream", "%UPSTREAM_HOST%"},
           {"cluster", "%UPSTREAM_CLUSTER%"},
           {"route", "%ROUTE_NAME%"},
           {"trailer", "%TRAILER(X-TRAILER)%"},
           {"ua", "%REQ(USER-AGENT)%"},
           {"client", "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%"},
           {"sni", "%REQUESTED_SERVER_NAME%"},
           {"summary", "%REQ(:METHOD)% %RESPONSE_CODE%"}}) {
    js_format.push_back({{"key", k}, {"value", v}});
  }
  json model = {
      appmesh::Mesh(),
      WithLog(Node("txt", up->port("txt")),
              {{"path", txt_log},
               {"format",
                {{"text",
                  "%START_TIME% %REQ(:METHOD)% %REQ(:PATH)% %PROTOCOL% "
                  "%RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% "
                  "%BYTES_SENT% %DURATION% %UPSTREAM_HOST% "
                  "%UPSTREAM_CLUSTER% \"%REQ(USER-AGENT)%\" "
                  "%REQ(X-REQUEST-ID)% %CONNECTION_ID%\n"}}}}),
      WithLog(Node("js", up->port("js")),
              {{"path", js_log}, {"format", {{"json", js_format}}}}),
      appmesh::ServiceByNode("txt.m.local", "txt"),
      appmesh::Router("r", kRouterPort),
      appmesh::Route("r", "js-route",
                     {{"httpRoute",
                       {{"match", {{"prefix", "/"}}},
                        {"action", appmesh::Targets({{"js", 1}})}}}}),
      appmesh::ServiceByRouter("js.m.local", "r"),
      gateway,
      appmesh::GatewayRoute("gw", "to-js", "/gw", "js.m.local")};
  ASSERT_TRUE(node_.Start(model));

  // Text node: GETs, a POST echoed back, a 404 from the upstream.
  std::map<std::string, Want> txt_want;
  for (int i = 1; i <= 6; ++i) {
    std::string path = absl::StrCat("/t/", i);
    EXPECT_EQ(Outbound("txt.m.local", path,
                       absl::StrCat("-H 'x-request-id: rid-", i, "'")),
              200);
    txt_want[path] = {200, 0, 4};  // "txt\n"
  }
  EXPECT_EQ(Outbound("txt.m.local", "/echo/1", "--data-binary 'hello world'"),
            200);
  txt_want["/echo/1"] = {200, 11, 11};
  EXPECT_EQ(Outbound("txt.m.local", "/nf", "-H 'x-status: 404'"), 404);
  txt_want["/nf"] = {404, 0, 4};

  // JSON node: plain, sized, chunked with a trailer; and through the
  // gateway, which logs to the gateway's file and to the node's.
  std::map<std::string, Want> js_want;
  for (int i = 1; i <= 3; ++i) {
    std::string path = absl::StrCat("/j/", i);
    EXPECT_EQ(Outbound("js.m.local:8471", path), 200);
    js_want[path] = {200, 0, 3};  // "js\n"
  }
  EXPECT_EQ(Outbound("js.m.local:8471", "/big", "-H 'x-response-bytes: 1000'"),
            200);
  js_want["/big"] = {200, 0, 1000};
  EXPECT_EQ(
      Outbound("js.m.local:8471", "/chunked", "-H 'x-chunked-response: 1'"),
      200);
  std::map<std::string, Want> gw_want;
  for (int i = 1; i <= 3; ++i) {
    std::string path = absl::StrCat("/gw/", i);
    EXPECT_EQ(Gateway(path), 200);
    js_want[path] = {200, 0, 3};
    gw_want[path] = {200, 0, 3};
  }
  // No gateway route: only the gateway logs it.
  EXPECT_EQ(Gateway("/nowhere"), 404);
  gw_want["/nowhere"] = {404, 0, -1};

  // ---- Text ----
  std::vector<std::string> txt = WaitLines(txt_log, txt_want.size());
  EXPECT_EQ(txt.size(), txt_want.size());
  const std::regex text_re(
      R"re(^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) (GET|POST) (\S+) )re"
      R"re(HTTP/1\.1 (\d{3}) (\S+) (\d+) (\d+) (\d+) (\S+) (\S+) )re"
      R"re("([^"]*)" (\S+) (\d+)$)re");
  std::map<std::string, int> seen;
  for (const std::string& line : txt) {
    std::smatch m;
    ASSERT_TRUE(std::regex_match(line, m, text_re)) << line;
    std::string path = m[3];
    ASSERT_TRUE(txt_want.count(path)) << line;
    ++seen[path];
    const Want& w = txt_want[path];
    EXPECT_EQ(std::stoi(m[4]), w.code) << line;
    EXPECT_EQ(m[5], "-") << line;
    EXPECT_EQ(std::stoll(m[6]), w.received) << line;
    EXPECT_EQ(std::stoll(m[7]), w.sent) << line;
    EXPECT_EQ(m[9], absl::StrCat("127.0.0.1:", up->port("txt"))) << line;
    EXPECT_EQ(m[10], absl::StrCat("m/txt:", up->port("txt"))) << line;
    EXPECT_TRUE(absl::StartsWith(std::string(m[11]), "curl/")) << line;
    if (absl::StartsWith(path, "/t/")) {
      EXPECT_EQ(m[12], "rid-" + path.substr(3)) << line;  // the client's id
    } else {
      EXPECT_EQ(std::string(m[12]).size(), 36u) << line;  // generated UUID
    }
  }
  for (const auto& [path, w] : txt_want) EXPECT_EQ(seen[path], 1) << path;

  // ---- JSON ----
  std::vector<std::string> js = WaitLines(js_log, js_want.size() + 1);
  EXPECT_EQ(js.size(), js_want.size() + 1);  // + /chunked
  seen.clear();
  for (const std::string& line : js) {
    json j = json::parse(line, nullptr, false);
    ASSERT_TRUE(j.is_object()) << line;
    std::string path = j["path"];
    ++seen[path];
    EXPECT_EQ(j["method"], "GET") << line;
    EXPECT_TRUE(j["code"].is_number_integer()) << line;
    EXPECT_TRUE(j["rx"].is_number_integer()) << line;
    EXPECT_TRUE(j["tx"].is_number_integer()) << line;
    EXPECT_TRUE(j["duration"].is_number_integer()) << line;
    EXPECT_EQ(j["flags"], "-") << line;
    EXPECT_EQ(j["details"], "via_upstream") << line;
    EXPECT_EQ(j["upstream"], absl::StrCat("127.0.0.1:", up->port("js")));
    EXPECT_EQ(j["cluster"], absl::StrCat("m/js:", up->port("js")));
    EXPECT_EQ(j["route"], "js-route") << line;
    EXPECT_EQ(j["client"], "127.0.0.1") << line;
    EXPECT_TRUE(j["sni"].is_null()) << line;
    EXPECT_TRUE(absl::StartsWith(j["ua"].get<std::string>(), "curl/"));
    EXPECT_EQ(j["summary"], "GET 200") << line;
    EXPECT_TRUE(std::regex_match(
        j["start"].get<std::string>(),
        std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)")))
        << line;
    if (path == "/chunked") {
      EXPECT_EQ(j["code"], 200);
      EXPECT_EQ(j["trailer"], "done") << line;
      EXPECT_GT(j["tx"].get<int64_t>(), 0) << line;
      continue;
    }
    EXPECT_TRUE(j["trailer"].is_null()) << line;
    ASSERT_TRUE(js_want.count(path)) << line;
    const Want& w = js_want[path];
    EXPECT_EQ(j["code"], w.code) << line;
    EXPECT_EQ(j["rx"], w.received) << line;
    EXPECT_EQ(j["tx"], w.sent) << line;
  }
  for (const auto& [path, w] : js_want) EXPECT_EQ(seen[path], 1) << path;
  EXPECT_EQ(seen["/chunked"], 1);

  // ---- Envoy's default format (the gateway gave none) ----
  std::vector<std::string> gw = WaitLines(gw_log, gw_want.size());
  EXPECT_EQ(gw.size(), gw_want.size());
  const std::regex default_re(
      R"re(^\[(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)\] "(\S+) (\S+) (\S+)" )re"
      R"re((\d{3}) (\S+) (\d+) (\d+) (\d+) (\S+) "([^"]*)" "([^"]*)" )re"
      R"re("([^"]*)" "([^"]*)" "([^"]*)"$)re");
  seen.clear();
  for (const std::string& line : gw) {
    std::smatch m;
    ASSERT_TRUE(std::regex_match(line, m, default_re)) << line;
    std::string path = m[3];
    ASSERT_TRUE(gw_want.count(path)) << line;
    ++seen[path];
    const Want& w = gw_want[path];
    EXPECT_EQ(m[2], "GET") << line;
    EXPECT_EQ(m[4], "HTTP/1.1") << line;
    EXPECT_EQ(std::stoi(m[5]), w.code) << line;
    EXPECT_EQ(m[14], absl::StrCat("127.0.0.1:", gw_port_)) << line;
    if (path == "/nowhere") {
      EXPECT_EQ(m[6], "NR") << line;
      EXPECT_EQ(m[15], "-") << line;
      EXPECT_EQ(m[13], "-") << line;  // not routed: no request id sent
      continue;
    }
    EXPECT_EQ(m[11], "127.0.0.1") << line;  // X-Forwarded-For as sent
    EXPECT_EQ(m[6], "-") << line;
    EXPECT_EQ(std::stoll(m[7]), w.received) << line;
    EXPECT_EQ(std::stoll(m[8]), w.sent) << line;
    EXPECT_EQ(m[15], absl::StrCat("127.0.0.1:", up->port("js"))) << line;
    EXPECT_EQ(std::string(m[13]).size(), 36u) << line;
  }
  for (const auto& [path, w] : gw_want) EXPECT_EQ(seen[path], 1) << path;

  std::string metrics = node_.Metrics();
  EXPECT_EQ(Metric(metrics, "nodemesh_access_log_lines_total"),
            txt.size() + js.size() + gw.size());
  EXPECT_EQ(Metric(metrics, "nodemesh_access_log_write_errors_total"), 0u);
  EXPECT_EQ(Metric(metrics, "nodemesh_access_log_open_errors_total"), 0u);
}

TEST_F(ProxyAccessLogTest, OnePathForTwoResourcesAndAMissingDirectory) {
  Upstreams* up = node_.AddUpstreams({{"a"}});
  const std::string shared = dir_ + "/shared.log";
  const std::string missing = dir_ + "/not-there/x.log";
  json gateway = appmesh::Gateway("gw", gw_port_);
  gateway["spec"]["logging"]["accessLog"]["file"] = {
      {"path", shared}, {"format", {{"text", "gw %REQ(:PATH)%\n"}}}};
  json model = {appmesh::Mesh(),
                WithLog(Node("a", up->port("a")),
                        {{"path", shared},
                         {"format", {{"text", "node %REQ(:PATH)%\n"}}}}),
                WithLog(Node("b", PickPort()), {{"path", missing}}),
                appmesh::ServiceByNode("a.m.local", "a"),
                gateway,
                appmesh::GatewayRoute("gw", "to-a", "/", "a.m.local")};
  ASSERT_TRUE(node_.Start(model));
  // The gateway and its target share the file: one line, the target's.
  EXPECT_EQ(Gateway("/one"), 200);
  EXPECT_EQ(Outbound("a.m.local", "/two"), 200);
  std::vector<std::string> lines = WaitLines(shared, 2);
  EXPECT_EQ(lines, (std::vector<std::string>{"node /one", "node /two"}));
  // The missing directory: a warning, a metric, traffic unharmed.
  json stats = node_.AdminJson("/stats");
  bool warned = false;
  for (const auto& w : stats["proxy"]["config_warnings"])
    warned = warned || absl::StrContains(w.get<std::string>(), "not-there");
  EXPECT_TRUE(warned) << stats.dump();
  EXPECT_GT(Metric(node_.Metrics(), "nodemesh_access_log_open_errors_total"),
            0u);
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/not-there"));
}

TEST_F(ProxyAccessLogTest, AConfigChangeKeepsOpenFilesAndOpensNewOnes) {
  Upstreams* up = node_.AddUpstreams({{"a"}});
  const std::string node_log = dir_ + "/node.log";
  const std::string gw_log = dir_ + "/gw.log";
  auto model = [&](bool with_gateway) {
    json m = {appmesh::Mesh(),
              WithLog(Node("a", up->port("a")),
                      {{"path", node_log},
                       {"format", {{"text", "%REQ(:PATH)% %RESPONSE_CODE%"}}}}),
              appmesh::ServiceByNode("a.m.local", "a")};
    if (with_gateway) {
      json gateway = appmesh::Gateway("gw", gw_port_);
      gateway["spec"]["logging"]["accessLog"]["file"] = {
          {"path", gw_log}, {"format", {{"text", "gw %REQ(:PATH)%"}}}};
      m.push_back(gateway);
      m.push_back(appmesh::GatewayRoute("gw", "to-a", "/", "a.m.local"));
    }
    return m;
  };
  ASSERT_TRUE(node_.Start(model(false)));
  EXPECT_EQ(Outbound("a.m.local", "/1"), 200);
  EXPECT_EQ(WaitLines(node_log, 1), std::vector<std::string>{"/1 200"});
  // The file moves away; a config change that keeps its path keeps the
  // descriptor, so lines follow the file (rotation must copy-truncate).
  std::filesystem::rename(node_log, node_log + ".moved");
  std::string tmp = node_.config_dir() + "/.model.tmp";
  std::ofstream(tmp) << model(true).dump();
  std::filesystem::rename(tmp, node_.config_dir() + "/model.json");
  bool served = false;
  for (int i = 0; i < 50 && !served; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    served = Gateway("/2") == 200;
  }
  ASSERT_TRUE(served);
  EXPECT_EQ(Outbound("a.m.local", "/3"), 200);
  std::vector<std::string> moved = WaitLines(node_log + ".moved", 3);
  EXPECT_EQ(moved, (std::vector<std::string>{"/1 200", "/2 200", "/3 200"}));
  EXPECT_FALSE(std::filesystem::exists(node_log));
  EXPECT_EQ(WaitLines(gw_log, 1), std::vector<std::string>{"gw /2"});
}

TEST_F(ProxyAccessLogTest, LocalRepliesCarryEnvoysResponseFlags) {
  const std::string log = dir_ + "/dead.log";
  json format = json::array();
  for (auto [k, v] : std::vector<std::pair<std::string, std::string>>{
           {"code", "%RESPONSE_CODE%"},
           {"flags", "%RESPONSE_FLAGS%"},
           {"details", "%RESPONSE_CODE_DETAILS%"},
           {"reason", "%UPSTREAM_TRANSPORT_FAILURE_REASON%"},
           {"tx", "%BYTES_SENT%"}}) {
    format.push_back({{"key", k}, {"value", v}});
  }
  // Nothing listens on the node's port: every attempt fails to connect.
  json model = {appmesh::Mesh(),
                WithLog(Node("dead", PickPort()),
                        {{"path", log}, {"format", {{"json", format}}}}),
                appmesh::ServiceByNode("dead.m.local", "dead")};
  ASSERT_TRUE(node_.Start(model));
  EXPECT_EQ(Outbound("dead.m.local", "/"), 503);
  std::vector<std::string> lines = WaitLines(log, 1);
  ASSERT_EQ(lines.size(), 1u);
  json j = json::parse(lines[0], nullptr, false);
  EXPECT_EQ(j["code"], 503) << lines[0];
  // App Mesh's implicit retry policy retried twice.
  EXPECT_EQ(j["flags"], "UF,URX") << lines[0];
  EXPECT_EQ(j["details"],
            "upstream_reset_before_response_started{connection_failure}");
  EXPECT_EQ(j["reason"], "connection_failure");
  EXPECT_GT(j["tx"].get<int64_t>(), 0);  // the local reply's body
}

// A workload of "client" (nodemeshctl run) calls a service by name: the line
// goes to the client's file (its Envoy's egress) and to the target's
// (ingress), each in its own format.
TEST_F(ProxyAccessLogTest, TheCallersAndTheTargetsFilesBothGetTheLine) {
  const std::string client_log = dir_ + "/client.log";
  const std::string product_log = dir_ + "/product.log";
  auto registry_node = [](const std::string& name, uint16_t port,
                          json backends) {
    json spec = {{"listeners",
                  {{{"portMapping", {{"port", port}, {"protocol", "http"}}}}}}};
    if (!backends.empty()) spec["backends"] = backends;
    return json{{"meshName", "m"}, {"virtualNodeName", name}, {"spec", spec}};
  };
  json model = {
      appmesh::Mesh(),
      WithLog(registry_node("client", 9471,
                            {{{"virtualService",
                               {{"virtualServiceName", "product.m.local"}}}}}),
              {{"path", client_log},
               {"format", {{"text", "egress %REQ(:PATH)% %RESPONSE_CODE%"}}}}),
      WithLog(registry_node("product", kRouterPort, json::array()),
              {{"path", product_log},
               {"format", {{"text", "ingress %REQ(:PATH)% %RESPONSE_CODE%"}}}}),
      appmesh::ServiceByNode("product.m.local", "product")};
  ASSERT_TRUE(node_.Start(model));
  node_.AddWorkloadUpstreams("m", "product",
                             {{"product", kRouterPort, "127.0.0.71"}});
  std::string code =
      node_.RunAsWorkload("m", "client",
                          absl::StrCat("curl -s -o /dev/null -w '%{http_code}' "
                                       "http://product.m.local:",
                                       kRouterPort, "/a"));
  EXPECT_EQ(code, "200");
  EXPECT_EQ(WaitLines(client_log, 1),
            std::vector<std::string>{"egress /a 200"});
  EXPECT_EQ(WaitLines(product_log, 1),
            std::vector<std::string>{"ingress /a 200"});
}

TEST_F(ProxyAccessLogTest, ATcpConnectionLogsOneLineWhenItCloses) {
  Upstreams* up = node_.AddUpstreams({{"echo"}});
  const std::string log = dir_ + "/tcp.log";
  json model = {
      appmesh::Mesh(),
      WithLog(Node("echo", up->port("echo"), "127.0.0.1", "tcp"),
              {{"path", log},
               {"format",
                {{"json",
                  {{{"key", "code"}, {"value", "%RESPONSE_CODE%"}},
                   {{"key", "protocol"}, {"value", "%PROTOCOL%"}},
                   {{"key", "rx"}, {"value", "%BYTES_RECEIVED%"}},
                   {{"key", "tx"}, {"value", "%BYTES_SENT%"}},
                   {{"key", "upstream"}, {"value", "%UPSTREAM_HOST%"}},
                   {{"key", "route"}, {"value", "%ROUTE_NAME%"}},
                   {{"key", "local"},
                    {"value", "%DOWNSTREAM_LOCAL_ADDRESS%"}}}}}}}),
      appmesh::Router("tr", kTcpRouterPort, "tcp"),
      appmesh::Route(
          "tr", "bytes",
          {{"tcpRoute", {{"action", appmesh::Targets({{"echo", 1}})}}}}),
      appmesh::ServiceByRouter("echo.m.local", "tr")};
  ASSERT_TRUE(node_.Start(model));
  auto maps = datapath::DatapathMaps::Open(node_.pin_dir());
  ASSERT_TRUE(maps.ok()) << maps.status();
  auto vip = datapath::ServiceAddress::Parse(
      absl::StrCat("127.10.4.71:", kTcpRouterPort));
  ASSERT_TRUE(vip.ok());
  nm_service svc{};
  svc.service_id = 71;
  svc.action = NM_ACTION_PROXY;
  ASSERT_TRUE(maps->UpsertService(*vip, svc).ok());
  CgroupScope workload(node_.workloads_cgroup() + "/wl");
  // An HTTP exchange over the tcpRoute: the proxy only counts bytes.
  static const std::string kRequest =
      "GET /tcp HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  ChildProcess client(workload.path(), node_.netns_fd(), [] {
    auto fd = Connect(absl::StrCat("127.10.4.71:", kTcpRouterPort));
    if (!fd.valid()) return 10;
    if (!WriteAll(fd.get(), kRequest.data(), kRequest.size())) return 11;
    std::string back;
    char buf[4096];
    ssize_t n;
    while ((n = ::recv(fd.get(), buf, sizeof(buf), 0)) > 0)
      back.append(buf, static_cast<size_t>(n));
    // The size of the response, for the parent to compare.
    return back.find("echo\n") != std::string::npos
               ? static_cast<int>(back.size() % 200) + 20
               : 12;
  });
  int status = client.Wait(20000);
  ASSERT_GE(status, 20);
  std::vector<std::string> lines = WaitLines(log, 1);
  ASSERT_EQ(lines.size(), 1u);
  json j = json::parse(lines[0], nullptr, false);
  ASSERT_TRUE(j.is_object()) << lines[0];
  EXPECT_TRUE(j["code"].is_null()) << lines[0];
  EXPECT_TRUE(j["protocol"].is_null()) << lines[0];
  EXPECT_EQ(j["rx"], kRequest.size()) << lines[0];
  EXPECT_EQ(j["tx"].get<int64_t>() % 200 + 20, status) << lines[0];
  EXPECT_EQ(j["upstream"], absl::StrCat("127.0.0.1:", up->port("echo")));
  EXPECT_EQ(j["route"], "bytes");
  EXPECT_EQ(j["local"], absl::StrCat("127.10.4.71:", kTcpRouterPort));
}

}  // namespace
}  // namespace nodemesh::testing
