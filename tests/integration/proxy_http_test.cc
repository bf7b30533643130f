// The proxy's HTTP/1.1 path with a real agent, real upstreams and real
// clients: App Mesh routing (every match type, priority, weights), retries,
// timeouts, local replies and bodies.

#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "tests/integration/proxy_fixture.h"

namespace nodemesh::testing {
namespace {

using appmesh::GatewayRoute;
using appmesh::Node;
using appmesh::Route;
using appmesh::Router;
using appmesh::Targets;
using nlohmann::json;

// Response headers and body of one curl call (-i).
struct CurlResult {
  int status = 0;
  std::string headers;
  std::string body;
  std::string Header(const std::string& name) const {
    for (absl::string_view line : absl::StrSplit(headers, "\r\n")) {
      auto colon = line.find(':');
      if (colon == line.npos) continue;
      std::string n(line.substr(0, colon));
      for (char& c : n) c = static_cast<char>(std::tolower(c));
      if (n == name) {
        std::string v(line.substr(colon + 1));
        while (!v.empty() && v.front() == ' ') v.erase(0, 1);
        return v;
      }
    }
    return "";
  }
};

class ProxyHttpTest : public ::testing::Test {
 protected:
  // One curl request; `args` go before the URL.
  CurlResult Get(const std::string& url, const std::string& args = "") {
    std::string out = node_.Curl("-i " + args + " '" + url + "'");
    CurlResult r;
    // Skip interim responses (100 Continue).
    size_t start = 0;
    while (true) {
      size_t end = out.find("\r\n\r\n", start);
      if (end == std::string::npos) return r;
      std::string head = out.substr(start, end - start);
      std::vector<std::string> words = absl::StrSplit(head, ' ');
      if (words.size() >= 2) (void)absl::SimpleAtoi(words[1], &r.status);
      if (r.status == 100) {
        start = end + 4;
        continue;
      }
      r.headers = head;
      r.body = out.substr(end + 4);
      return r;
    }
  }
  std::string Gw(const std::string& path) const {
    return absl::StrCat("http://127.0.0.1:", gw_port_, path);
  }
  std::string Outbound(const std::string& path) const {
    return absl::StrCat("http://127.0.0.1:", node_.outbound_port(), path);
  }
  int Attempts(uint16_t upstream_port, const std::string& request_id) {
    json s = node_.UpstreamStats(upstream_port);
    if (!s.is_object() || !s["attempts"].contains(request_id)) return 0;
    return s["attempts"][request_id].get<int>();
  }

  ProxyNode node_;
  uint16_t gw_port_ = PickPort();
};

TEST_F(ProxyHttpTest, WeightedTargetsHoldOverTenThousandRequests) {
  Upstreams* up = node_.AddUpstreams({{"heavy"}, {"light"}});
  json model = {
      appmesh::Mesh(),
      Node("heavy", up->port("heavy")),
      Node("light", up->port("light")),
      Router("r", 8080),
      Route("r", "split",
            {{"httpRoute",
              {{"match", {{"prefix", "/"}}},
               {"action", Targets({{"heavy", 70}, {"light", 30}})}}}}),
      appmesh::ServiceByRouter("svc.m.local", "r"),
      appmesh::Gateway("gw", gw_port_),
      GatewayRoute("gw", "all", "/", "svc.m.local")};
  ASSERT_TRUE(node_.Start(model));
  // curl's URL range: 10,000 requests on one keep-alive connection.
  std::string codes = node_.Curl("-o /dev/null -w '%{http_code}\\n' '" +
                                 Gw("/w/[1-10000]") + "'");
  EXPECT_EQ(std::count(codes.begin(), codes.end(), '\n'), 10000);
  size_t ok = 0;
  for (absl::string_view c : absl::StrSplit(codes, '\n')) ok += c == "200";
  EXPECT_EQ(ok, 10000u);
  double heavy = node_.UpstreamStats(up->port("heavy"))["requests"].get<int>();
  double light = node_.UpstreamStats(up->port("light"))["requests"].get<int>();
  EXPECT_EQ(heavy + light, 10000);
  // Within 2 percentage points of 70/30 (two workers, each exact).
  EXPECT_NEAR(heavy / 10000, 0.70, 0.02);
  EXPECT_NEAR(light / 10000, 0.30, 0.02);
  // The metric counts the same requests.
  std::string metrics = node_.Metrics();
  EXPECT_TRUE(absl::StrContains(metrics, "route=\"split\""));
}

TEST_F(ProxyHttpTest, ARouteChangeTakesEffectWithoutFailingARequest) {
  Upstreams* up = node_.AddUpstreams({{"old"}, {"new"}});
  auto model_to = [&](const std::string& target, uint16_t gw) {
    return json{appmesh::Mesh(),
                Node("old", up->port("old")),
                Node("new", up->port("new")),
                Router("r", 8080),
                Route("r", "main",
                      {{"httpRoute",
                        {{"match", {{"prefix", "/"}}},
                         {"action", Targets({{target, 1}})}}}}),
                appmesh::ServiceByRouter("svc.m.local", "r"),
                appmesh::Gateway("gw", gw),
                GatewayRoute("gw", "all", "/", "svc.m.local")};
  };
  ASSERT_TRUE(node_.Start(model_to("old", gw_port_)));
  EXPECT_EQ(Get(Gw("/")).Header("x-upstream"), "old");
  // wrk runs across the change; the file is replaced atomically.
  std::string wrk_out;
  std::thread wrk([&] { wrk_out = node_.Run("wrk -t1 -c4 -d3s " + Gw("/")); });
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  std::string tmp = node_.config_dir() + "/.model.tmp";
  std::ofstream(tmp) << model_to("new", gw_port_).dump();
  std::filesystem::rename(tmp, node_.config_dir() + "/model.json");
  wrk.join();
  EXPECT_FALSE(absl::StrContains(wrk_out, "Non-2xx")) << wrk_out;
  EXPECT_FALSE(absl::StrContains(wrk_out, "Socket errors")) << wrk_out;
  EXPECT_EQ(Get(Gw("/")).Header("x-upstream"), "new");
  EXPECT_GT(node_.UpstreamStats(up->port("new"))["requests"].get<int>(), 0);
  // The gateway moves to another port: the old one closes, the new serves.
  uint16_t moved = PickPort();
  std::ofstream(tmp) << model_to("new", moved).dump();
  std::filesystem::rename(tmp, node_.config_dir() + "/model.json");
  bool served = false;
  for (int i = 0; i < 50 && !served; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    served = Get(absl::StrCat("http://127.0.0.1:", moved, "/")).status == 200;
  }
  EXPECT_TRUE(served);
  EXPECT_EQ(Get(Gw("/")).status, 0);  // nothing listens there any more
}

TEST_F(ProxyHttpTest, AGatewayPortInUseIsCountedAndRetried) {
  Upstreams* up = node_.AddUpstreams({{"app"}});
  net::UniqueFd squatter;
  {
    NetnsScope::Enter in(node_.netns());
    squatter = Listen(absl::StrCat("127.0.0.1:", gw_port_));
  }
  ASSERT_TRUE(squatter.valid());
  json model = {appmesh::Mesh(), Node("app", up->port("app")),
                appmesh::ServiceByNode("svc.m.local", "app"),
                appmesh::Gateway("gw", gw_port_),
                GatewayRoute("gw", "all", "/", "svc.m.local")};
  ASSERT_TRUE(node_.Start(model));
  EXPECT_FALSE(
      absl::StrContains(node_.Metrics(), "nodemesh_listener_errors_total 0"));
  squatter.Reset();  // the port frees up: the workers bind it within 5 s
  bool served = false;
  for (int i = 0; i < 80 && !served; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    served = Get(Gw("/")).Header("x-upstream") == "app";
  }
  EXPECT_TRUE(served);
}

TEST_F(ProxyHttpTest, EachMatchTypeRoutesAsAppMeshWould) {
  std::vector<std::string> names = {"exact",   "regex",  "hexact", "hprefix",
                                    "hsuffix", "hregex", "hrange", "hpresent",
                                    "hinvert", "method", "query",  "port",
                                    "scheme",  "long",   "short",  "fallback"};
  std::vector<Upstreams::Spec> specs;
  for (const auto& n : names) specs.push_back({n});
  Upstreams* up = node_.AddUpstreams(specs);
  json model = {appmesh::Mesh(), Router("r", 8080),
                appmesh::ServiceByRouter("svc.m.local", "r")};
  for (const auto& n : names) model.push_back(Node(n, up->port(n)));
  int priority = 0;
  auto route = [&](const std::string& name, json match,
                   bool prioritized = true) {
    json spec = {
        {"httpRoute",
         {{"match", std::move(match)}, {"action", Targets({{name, 1}})}}}};
    if (prioritized) spec["priority"] = priority++;
    model.push_back(Route("r", name, spec));
  };
  auto header = [](const std::string& prefix, json h) {
    return json{{"prefix", prefix}, {"headers", {std::move(h)}}};
  };
  route("exact", {{"path", {{"exact", "/exact"}}}});
  route("regex", {{"path", {{"regex", "/re/[0-9]+"}}}});
  route("hexact", header("/h", {{"name", "x-t"}, {"match", {{"exact", "e"}}}}));
  route("hprefix",
        header("/h", {{"name", "x-t"}, {"match", {{"prefix", "pre"}}}}));
  route("hsuffix",
        header("/h", {{"name", "x-t"}, {"match", {{"suffix", "suf"}}}}));
  route("hregex",
        header("/h", {{"name", "x-t"}, {"match", {{"regex", "r[a-z]+x"}}}}));
  route("hrange",
        header("/h", {{"name", "x-n"},
                      {"match", {{"range", {{"start", 10}, {"end", 20}}}}}}));
  route("hpresent", header("/h", {{"name", "x-p"}}));
  route("hinvert", header("/h", {{"name", "x-i"},
                                 {"invert", true},
                                 {"match", {{"exact", "no"}}}}));
  route("method", {{"prefix", "/m"}, {"method", "POST"}});
  route("query",
        {{"prefix", "/q"},
         {"queryParameters", {{{"name", "v"}, {"match", {{"exact", "2"}}}}}}});
  route("port", {{"prefix", "/p"}, {"port", 8080}});
  route("scheme", {{"prefix", "/s"}, {"scheme", "https"}});
  // No priority: after the prioritized ones, longest prefix first.
  route("short", {{"prefix", "/lp"}}, false);
  route("fallback", {{"prefix", "/"}}, false);
  route("long", {{"prefix", "/lp/long"}}, false);
  ASSERT_TRUE(node_.Start(model));

  struct Case {
    std::string path, args, want;
  };
  std::vector<Case> cases = {
      {"/exact", "", "exact"},
      {"/exact/more", "", "fallback"},
      {"/exact?x=1", "", "exact"},
      {"/re/123", "", "regex"},
      {"/re/12a", "", "fallback"},
      {"/h", "-H 'x-t: e'", "hexact"},
      {"/h", "-H 'x-t: prefixed'", "hprefix"},
      {"/h", "-H 'x-t: the-suf'", "hsuffix"},
      {"/h", "-H 'x-t: rabcx'", "hregex"},
      {"/h", "-H 'x-n: 10'", "hrange"},
      {"/h", "-H 'x-n: 19' -H 'x-i: no'", "hrange"},
      {"/h", "-H 'x-n: 20' -H 'x-i: no'", "fallback"},
      {"/h", "-H 'x-p: anything' -H 'x-i: no'", "hpresent"},
      {"/h", "-H 'x-i: yes'", "hinvert"},
      {"/h", "", "hinvert"},  // missing header, inverted: matches
      {"/h", "-H 'x-i: no'", "fallback"},
      {"/m", "-X POST", "method"},
      {"/m", "", "fallback"},
      {"/q?a=1&v=2", "", "query"},
      {"/q?v=3", "", "fallback"},
      {"/p", "", "port"},
      {"/s", "", "fallback"},
      {"/lp/long/x", "", "long"},
      {"/lp/x", "", "short"},
      {"/elsewhere", "", "fallback"},
  };
  for (const Case& c : cases) {
    CurlResult r =
        Get(Outbound(c.path), "-H 'Host: svc.m.local:8080' " + c.args);
    EXPECT_EQ(r.status, 200) << c.path << " " << c.args;
    EXPECT_EQ(r.Header("x-upstream"), c.want) << c.path << " " << c.args;
  }
  // /routes (nodemeshctl routes) shows the order they were tried in.
  json tables = node_.AdminJson("/routes");
  ASSERT_TRUE(tables.is_object()) << tables.dump();
  std::vector<std::string> order;
  for (const auto& r : tables["virtual_hosts"][0]["routes"])
    order.push_back(r["name"]);
  std::vector<std::string> want(names.begin(), names.begin() + 13);
  want.insert(want.end(), {"long", "short", "fallback"});
  EXPECT_EQ(order, want);
  // A Host without the port finds the service too; an unknown one does not.
  EXPECT_EQ(
      Get(Outbound("/exact"), "-H 'Host: svc.m.local'").Header("x-upstream"),
      "exact");
  CurlResult none = Get(Outbound("/"), "-H 'Host: other.m.local'");
  EXPECT_EQ(none.status, 404);
  EXPECT_EQ(none.Header("x-nodemesh-reason"), "no_route");
}

class ProxyRetryTest : public ProxyHttpTest {
 protected:
  // One service whose route retries per `retry` (null: App Mesh's implicit
  // policy) with `timeout`, reached through the gateway.
  void StartWith(const std::string& hostname, uint16_t port, json retry,
                 json timeout = nullptr,
                 const std::string& response_type = "") {
    json http_route = {{"match", {{"prefix", "/"}}},
                       {"action", Targets({{"app", 1}})}};
    if (!retry.is_null()) http_route["retryPolicy"] = retry;
    if (!timeout.is_null()) http_route["timeout"] = timeout;
    json model = {
        appmesh::Mesh(),
        Node("app", port, hostname, "http", json::object(), response_type),
        Router("r", 8080),
        Route("r", "main", {{"httpRoute", http_route}}),
        appmesh::ServiceByRouter("svc.m.local", "r"),
        appmesh::Gateway("gw", gw_port_),
        GatewayRoute("gw", "all", "/", "svc.m.local")};
    ASSERT_TRUE(node_.Start(model));
  }
  static json Retry(std::vector<std::string> events, int max = 2,
                    int per_try_ms = 5000) {
    return {{"maxRetries", max},
            {"perRetryTimeout", {{"unit", "ms"}, {"value", per_try_ms}}},
            {"httpRetryEvents", events}};
  }
};

TEST_F(ProxyRetryTest, ServerErrorsAreRetriedUpToMaxRetries) {
  Upstreams* up = node_.AddUpstreams({{"app"}});
  StartWith("127.0.0.1", up->port("app"), Retry({"server-error"}));
  CurlResult r = Get(Gw("/a"), "-H 'x-request-id: r1' -H 'x-fail-first: 2'");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(Attempts(up->port("app"), "r1"), 3);
  // Out of retries: the last upstream answer goes back as it is.
  r = Get(Gw("/a"), "-H 'x-request-id: r2' -H 'x-fail-first: 5'");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.Header("x-upstream"), "app");
  EXPECT_EQ(Attempts(up->port("app"), "r2"), 3);
  // 409 is not a server error.
  r = Get(Gw("/a"),
          "-H 'x-request-id: r3' -H 'x-fail-first: 1' -H 'x-fail-status: 409'");
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(Attempts(up->port("app"), "r3"), 1);
  EXPECT_TRUE(absl::StrContains(node_.Metrics(), "nodemesh_retries_total 4"));
}

TEST_F(ProxyRetryTest, ClientAndGatewayErrorEventsAreTheirStatuses) {
  Upstreams* up = node_.AddUpstreams({{"app"}});
  StartWith("127.0.0.1", up->port("app"),
            Retry({"client-error", "gateway-error"}, 1));
  auto attempts_for = [&](const std::string& id, int status) {
    CurlResult r =
        Get(Gw("/a"),
            absl::StrCat("-H 'x-request-id: ", id, "' -H 'x-fail-first: 1' ",
                         "-H 'x-fail-status: ", status, "'"));
    return std::make_pair(r.status, Attempts(up->port("app"), id));
  };
  EXPECT_EQ(attempts_for("c409", 409), std::make_pair(200, 2));
  EXPECT_EQ(attempts_for("c502", 502), std::make_pair(200, 2));
  EXPECT_EQ(attempts_for("c504", 504), std::make_pair(200, 2));
  EXPECT_EQ(attempts_for("c500", 500), std::make_pair(500, 1));
  EXPECT_EQ(attempts_for("c400", 400), std::make_pair(400, 1));
}

TEST_F(ProxyRetryTest, RetryGoesToAnotherEndpoint) {
  // app.test resolves to two addresses (ENDPOINTS): one upstream on each,
  // same port.
  uint16_t port = PickPort();
  node_.AddUpstreams({{"one", port, "127.0.0.1"}});
  node_.AddUpstreams({{"two", port, "127.0.0.2"}});
  node_.SetHosts("127.0.0.1 app.test\n127.0.0.2 app.test");
  StartWith("app.test", port, Retry({"server-error"}, 1), nullptr, "ENDPOINTS");
  // Both endpoints known before the first request.
  for (int i = 0; i < 100; ++i) {
    json c = node_.AdminJson("/clusters");
    if (c.is_object() && c["clusters"][0]["endpoints"].size() == 2) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  for (int i = 0; i < 20; ++i) {
    std::string id = absl::StrCat("spread", i);
    CurlResult r =
        Get(Gw("/a"), "-H 'x-request-id: " + id + "' -H 'x-fail-first: 1'");
    // Each endpoint fails the first attempt it sees: a retry that went
    // elsewhere fails again; one to the same endpoint would succeed.
    EXPECT_EQ(r.status, 503) << id;
    auto attempts = [&](const std::string& host) {
      json s = node_.UpstreamStats(port, host);
      return s["attempts"].contains(id) ? s["attempts"][id].get<int>() : 0;
    };
    EXPECT_EQ(attempts("127.0.0.1"), 1) << id;
    EXPECT_EQ(attempts("127.0.0.2"), 1) << id;
  }
}

TEST_F(ProxyRetryTest, BodyPastTheRetryBufferIsNotRetried) {
  Upstreams* up = node_.AddUpstreams({{"app"}});
  StartWith("127.0.0.1", up->port("app"), Retry({"server-error"}));
  std::string small(1000, 's');
  CurlResult r = Get(Gw("/echo"),
                     "-H 'x-request-id: small' -H 'x-fail-first: 1' "
                     "--data-binary " +
                         small);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, small);
  EXPECT_EQ(Attempts(up->port("app"), "small"), 2);
  node_.Run("sh -c 'head -c 300000 /dev/zero > /tmp/" +
            std::to_string(getpid()) + "-big'");
  r = Get(Gw("/echo"),
          "-H 'x-request-id: big' -H 'x-fail-first: 1' "
          "--data-binary @/tmp/" +
              std::to_string(getpid()) + "-big");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(Attempts(up->port("app"), "big"), 1);
  ::unlink(("/tmp/" + std::to_string(getpid()) + "-big").c_str());
}

TEST_F(ProxyRetryTest, PerRequestTimeoutAnswers504) {
  Upstreams* up = node_.AddUpstreams({{"app"}});
  StartWith("127.0.0.1", up->port("app"), nullptr,
            {{"perRequest", {{"unit", "ms"}, {"value", 300}}}});
  auto start = std::chrono::steady_clock::now();
  CurlResult r = Get(Gw("/slow"), "-H 'x-delay-ms: 3000'");
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(r.status, 504);
  EXPECT_EQ(r.Header("x-nodemesh-reason"), "request_timeout");
  EXPECT_LT(took, std::chrono::milliseconds(2500));
  EXPECT_EQ(Get(Gw("/fast"), "-H 'x-delay-ms: 10'").status, 200);
}

TEST_F(ProxyHttpTest, TheTargetListenersTimeoutTightensTheRoutes) {
  Upstreams* up = node_.AddUpstreams({{"app"}});
  json listener_timeout = {
      {"timeout",
       {{"http", {{"perRequest", {{"unit", "ms"}, {"value", 300}}}}}}}};
  json model = {
      appmesh::Mesh(),
      Node("app", up->port("app"), "127.0.0.1", "http", listener_timeout),
      Router("r", 8080),
      Route("r", "main",
            {{"httpRoute",
              {{"match", {{"prefix", "/"}}},
               {"action", Targets({{"app", 1}})}}}}),
      appmesh::ServiceByRouter("svc.m.local", "r"),
      appmesh::Gateway("gw", gw_port_),
      GatewayRoute("gw", "all", "/", "svc.m.local")};
  ASSERT_TRUE(node_.Start(model));
  // The route keeps App Mesh's 15 s; the listener says 300 ms.
  CurlResult r = Get(Gw("/slow"), "-H 'x-delay-ms: 3000'");
  EXPECT_EQ(r.status, 504);
  EXPECT_EQ(r.Header("x-nodemesh-reason"), "request_timeout");
}

TEST_F(ProxyRetryTest, PerRetryTimeoutRetriesThenAnswers504) {
  Upstreams* up = node_.AddUpstreams({{"app"}});
  StartWith("127.0.0.1", up->port("app"), Retry({"server-error"}, 1, 300));
  CurlResult r =
      Get(Gw("/slow"), "-H 'x-request-id: slow' -H 'x-delay-ms: 2000'");
  EXPECT_EQ(r.status, 504);
  EXPECT_EQ(r.Header("x-nodemesh-reason"), "per_try_timeout");
  EXPECT_EQ(Attempts(up->port("app"), "slow"), 2);
}

TEST_F(ProxyRetryTest, ResetIsRetriedByTheImplicitPolicyThenReported) {
  Upstreams* up = node_.AddUpstreams({{"app"}});
  StartWith("127.0.0.1", up->port("app"), nullptr);
  // App Mesh's policy without a retryPolicy: 2 retries on 503 and resets.
  CurlResult r = Get(Gw("/a"), "-H 'x-request-id: i1' -H 'x-fail-first: 2'");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(Attempts(up->port("app"), "i1"), 3);
  r = Get(Gw("/a"), "-H 'x-request-id: i2' -H 'x-reset: 1'");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.Header("x-nodemesh-reason"), "upstream_reset");
  EXPECT_EQ(Attempts(up->port("app"), "i2"), 3);
}

TEST_F(ProxyRetryTest, UnreachableEndpointsGetReasonedReplies) {
  // A port nothing listens on: every connect is refused.
  StartWith("127.0.0.1", PickPort(), nullptr);
  CurlResult r = Get(Gw("/a"));
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.Header("x-nodemesh-reason"), "upstream_connect_failure");
  EXPECT_FALSE(r.body.empty());
  EXPECT_TRUE(absl::StrContains(
      node_.Metrics(),
      "nodemesh_local_replies_total{reason=\"upstream_connect_failure\"} 1"));
}

TEST_F(ProxyRetryTest, UnresolvableHostnameHasNoHealthyUpstream) {
  StartWith("nothing.invalid", 8080, nullptr);
  CurlResult r = Get(Gw("/a"));
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.Header("x-nodemesh-reason"), "no_healthy_upstream");
}

TEST_F(ProxyRetryTest, BodiesAndHeadersArriveIntact) {
  Upstreams* up = node_.AddUpstreams({{"app"}});
  StartWith("127.0.0.1", up->port("app"), nullptr);
  std::string file = "/tmp/" + std::to_string(getpid()) + "-body";
  node_.Run("sh -c 'head -c 3000000 /dev/urandom > " + file + "'");
  std::string want_sum = node_.Run("sh -c 'sha256sum < " + file + "'");
  for (std::string framing :
       {"", "-H 'Transfer-Encoding: chunked' ", "-H 'Expect: 100-continue' ",
        "-H 'x-chunked-response: 1' "}) {
    std::string got = node_.Run("sh -c \"curl -s --max-time 20 " + framing +
                                "--data-binary @" + file + " " + Gw("/echo") +
                                " | sha256sum\"");
    EXPECT_EQ(got, want_sum) << framing;
  }
  ::unlink(file.c_str());
  // Hop-by-hop fields stay on their hop; x-forwarded-for and x-request-id
  // are added; Host becomes the virtual service (App Mesh's default rewrite).
  CurlResult r =
      Get(Gw("/headers"),
          "-H 'Connection: x-drop' -H 'x-drop: 1' -H 'Keep-Alive: 5' "
          "-H 'x-forwarded-for: 192.0.2.1' -H 'x-keep: yes'");
  json seen = json::parse(r.body, nullptr, false);
  ASSERT_TRUE(seen.is_object()) << r.body;
  std::map<std::string, std::string> h;
  for (const auto& f : seen["headers"]) {
    std::string n = f[0];
    for (char& c : n) c = static_cast<char>(std::tolower(c));
    h[n] = f[1];
  }
  EXPECT_EQ(h.count("x-drop"), 0u);
  EXPECT_EQ(h.count("keep-alive"), 0u);
  EXPECT_EQ(h.count("connection"), 0u);
  EXPECT_EQ(h["x-keep"], "yes");
  EXPECT_EQ(h["x-forwarded-for"], "192.0.2.1, 127.0.0.1");
  EXPECT_EQ(h["host"], "svc.m.local");
  EXPECT_TRUE(std::regex_match(h["x-request-id"],
                               std::regex("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}"
                                          "-[89ab][0-9a-f]{3}-[0-9a-f]{12}")))
      << h["x-request-id"];
  r = Get(Gw("/headers"), "-H 'x-request-id: given'");
  EXPECT_TRUE(absl::StrContains(r.body, "\"given\""));
}

TEST_F(ProxyRetryTest, PipelinedRequestsAreAnsweredInOrder) {
  Upstreams* up = node_.AddUpstreams({{"app"}});
  StartWith("127.0.0.1", up->port("app"), nullptr);
  RawClient c(node_.netns(), gw_port_);
  ASSERT_TRUE(c.connected());
  std::string three;
  for (int i = 1; i <= 3; ++i) {
    three += absl::StrCat("GET /headers/", i,
                          " HTTP/1.1\r\nHost: x\r\nx-delay-ms: ", (4 - i) * 50,
                          "\r\n\r\n");
  }
  RawResponse r1 = c.Exchange(three);
  RawResponse r2 = c.Exchange("");
  RawResponse r3 = c.Exchange("");
  EXPECT_TRUE(absl::StrContains(r1.body, "/headers/1"));
  EXPECT_TRUE(absl::StrContains(r2.body, "/headers/2"));
  EXPECT_TRUE(absl::StrContains(r3.body, "/headers/3"));
}

TEST_F(ProxyRetryTest, WrkRequestsAllArrive) {
  Upstreams* up = node_.AddUpstreams({{"app"}});
  StartWith("127.0.0.1", up->port("app"), nullptr);
  std::string out = node_.Run("wrk -t1 -c8 -d2s " + Gw("/wrk"));
  std::smatch m;
  ASSERT_TRUE(std::regex_search(out, m, std::regex("([0-9]+) requests in")))
      << out;
  long sent = std::stol(m[1]);
  EXPECT_GT(sent, 100);
  EXPECT_FALSE(absl::StrContains(out, "Non-2xx")) << out;
  // wrk counts completed responses; requests in flight when it stopped
  // reached the upstream too.
  long seen = node_.UpstreamStats(up->port("app"))["requests"].get<long>();
  EXPECT_GE(seen, sent);
  EXPECT_LE(seen, sent + 8);
}

TEST_F(ProxyRetryTest, SigtermFinishesRequestsInFlightAndClosesIdleOnes) {
  Upstreams* up = node_.AddUpstreams({{"app"}});
  StartWith("127.0.0.1", up->port("app"), nullptr);
  RawClient idle(node_.netns(), gw_port_);
  ASSERT_EQ(idle.Exchange("GET / HTTP/1.1\r\nHost: x\r\n\r\n").status, 200);
  CurlResult slow;
  std::thread client([&] { slow = Get(Gw("/slow"), "-H 'x-delay-ms: 1500'"); });
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  int exit_status = node_.agent().Terminate();
  client.join();
  EXPECT_EQ(exit_status, 0);
  EXPECT_EQ(slow.status, 200);
  EXPECT_EQ(slow.Header("connection"), "close");
  EXPECT_TRUE(idle.ClosedWithin(100));
}

}  // namespace
}  // namespace nodemesh::testing
