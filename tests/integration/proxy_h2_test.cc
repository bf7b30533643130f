// HTTP/2 and gRPC through the proxy with real clients and servers: curl and
// h2load as HTTP/2 clients, Debian's python3-grpcio as gRPC client and
// server, upstream_server.py as an HTTP/1.1 endpoint.

#include <poll.h>
#include <sys/socket.h>

#include <chrono>
#include <fstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "agent/http/h2_codec.h"
#include "gtest/gtest.h"
#include "tests/integration/echo_server.h"
#include "tests/integration/proxy_fixture.h"

namespace nodemesh::testing {
namespace {

using appmesh::GatewayRoute;
using appmesh::Node;
using appmesh::Route;
using appmesh::Router;
using appmesh::Targets;
using nlohmann::json;

// A small HTTP/2 client over a blocking socket, on the agent's own codec
// (for what neither curl nor grpcio sends: extended CONNECT).
class H2TestClient : public http::H2Visitor {
 public:
  explicit H2TestClient(net::UniqueFd fd)
      : fd_(std::move(fd)), codec_(http::H2Codec::Role::kClient, this) {}

  // Sends what the codec has and reads until `done()` or `ms` passed.
  template <typename F>
  bool PumpUntil(F done, int ms) {
    auto deadline =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    char buf[65536];
    while (true) {
      std::string out;
      if (!codec_.Produce(&out, 1 << 20)) return false;
      if (!out.empty() && !WriteAll(fd_.get(), out.data(), out.size()))
        return false;
      if (done()) return true;
      if (std::chrono::steady_clock::now() > deadline) return false;
      pollfd p{fd_.get(), POLLIN, 0};
      if (::poll(&p, 1, 20) != 1) continue;
      ssize_t n = ::recv(fd_.get(), buf, sizeof(buf), 0);
      if (n <= 0) return done();
      if (!codec_.Feed(std::string_view(buf, static_cast<size_t>(n))))
        return false;
    }
  }

  void OnHeaders(int32_t, const http::H2HeaderBlock& block, bool) override {
    if (block.status != 0) status = block.status;
    for (const http::HeaderField& f : block.headers)
      headers.append(f.name).append(": ").append(f.value).append("\n");
  }
  void OnData(int32_t id, std::string_view d) override {
    data.append(d);
    if (consume) {
      codec_.Consume(id, d.size());
    } else {
      held += d.size();
    }
  }
  void OnEndStream(int32_t) override { ended = true; }
  void OnStreamClose(int32_t, uint32_t code) override {
    closed = true;
    close_code = code;
  }
  http::H2OutBody* BodyOf(int32_t) override { return &body; }

  net::UniqueFd fd_;
  http::H2Codec codec_;
  http::H2OutBody body;
  int status = 0;
  std::string headers;
  std::string data;
  bool ended = false;
  bool closed = false;
  uint32_t close_code = 0;
  bool consume = true;  // false: the window stays shut (a stalled reader)
  size_t held = 0;      // bytes received but not consumed
};

// The agent's resident memory, bytes.
size_t RssOf(pid_t pid) {
  std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoul(line.substr(6)) * 1024;
  }
  return 0;
}

class ProxyH2Test : public ::testing::Test {
 protected:
  std::string Gw(const std::string& path) const {
    return absl::StrCat("http://127.0.0.1:", gw_port_, path);
  }
  ProxyNode node_;
  uint16_t gw_port_ = PickPort();
};

// An HTTP/2 client (prior knowledge) reaches an HTTP/1.1 endpoint: the
// request and response cross versions intact, many streams on one
// connection.
TEST_F(ProxyH2Test, PriorKnowledgeClientToHttp1Endpoint) {
  Upstreams* up = node_.AddUpstreams({{"a"}});
  json model = {
      appmesh::Mesh(),
      Node("a", up->port("a")),
      Router("r", 8080),
      Route(
          "r", "all",
          {{"httpRoute",
            {{"match", {{"prefix", "/"}}}, {"action", Targets({{"a", 1}})}}}}),
      appmesh::ServiceByRouter("svc.m.local", "r"),
      appmesh::Gateway("gw", gw_port_),
      GatewayRoute("gw", "all", "/", "svc.m.local")};
  ASSERT_TRUE(node_.Start(model));
  std::string out =
      node_.Curl("--http2-prior-knowledge -s -i '" + Gw("/hello") + "'");
  EXPECT_TRUE(absl::StartsWith(out, "HTTP/2 200")) << out;
  // curl --http2 on http:// asks for "Upgrade: h2c": the proxy switches,
  // the first request is answered on stream 1, a POST's body too.
  EXPECT_EQ(node_.Curl("--http2 -s -o /dev/null -w '%{http_code} "
                       "%{http_version}' '" +
                       Gw("/up") + "'"),
            "200 2");
  EXPECT_EQ(node_.Curl("--http2 -s -d abc '" + Gw("/echo") + "'"), "abc");
  // 200 requests on one connection, 10 at a time, with a body each way
  // (h2load: Debian's curl 7.88 cannot reuse a prior-knowledge connection).
  std::string out2 = node_.Run("h2load -n 200 -c 1 -m 10 -d /etc/services '" +
                               Gw("/p") + "' 2>&1");
  EXPECT_TRUE(absl::StrContains(out2, "200 succeeded, 0 failed")) << out2;
  EXPECT_TRUE(absl::StrContains(out2, "200 2xx")) << out2;
  std::string metrics = node_.Metrics();
  EXPECT_TRUE(absl::StrContains(
      metrics, "nodemesh_downstream_http2_connections_total 3\n"))
      << metrics;
}

// gRPC from a real client to a real server, through the outbound listener
// by :authority: unary, server, client and bidirectional streaming, and a
// grpc-status from the server's trailers.
TEST_F(ProxyH2Test, GrpcCallsOfEveryKindPassThrough) {
  Upstreams* up = node_.AddGrpcUpstreams({{"cart"}});
  uint16_t port = up->port("cart");
  json model = {appmesh::Mesh(), Node("cart", port, "127.0.0.1", "grpc"),
                appmesh::ServiceByNode("cart.m.local", "cart")};
  ASSERT_TRUE(node_.Start(model));
  std::string call = absl::StrCat("--target 127.0.0.1:", node_.outbound_port(),
                                  " --authority cart.m.local:", port, " ");
  EXPECT_EQ(node_.GrpcCall(call + "--method Unary --data hi"),
            "msg cart:hi\nstatus OK\n");
  EXPECT_EQ(node_.GrpcCall(call + "--method ServerStream --data 3"),
            "msg cart:0\nmsg cart:1\nmsg cart:2\nstatus OK\n");
  EXPECT_EQ(node_.GrpcCall(call + "--method ClientStream --data a --data b "
                                  "--data c"),
            "msg cart:a,b,c\nstatus OK\n");
  EXPECT_EQ(node_.GrpcCall(call + "--method Bidi --data x --data y"),
            "msg cart:x\nmsg cart:y\nstatus OK\n");
  // The server's status arrives in its trailers (here a trailers-only
  // response) and reaches the client unchanged.
  EXPECT_EQ(node_.GrpcCall(call + "--metadata x-grpc-status=13"),
            "status INTERNAL asked to fail with 13\n");
  std::string metrics = node_.Metrics();
  EXPECT_TRUE(
      absl::StrContains(metrics, "nodemesh_upstream_http2_connections_total "))
      << metrics;
  EXPECT_FALSE(absl::StrContains(
      metrics, "nodemesh_upstream_http2_connections_total 0\n"));
}

json GrpcGateway(const std::string& name, uint16_t port) {
  json g = appmesh::Gateway(name, port);
  g["spec"]["listeners"][0]["portMapping"]["protocol"] = "grpc";
  return g;
}

// App Mesh grpcRoutes pick targets by service, method and metadata, behind
// a VirtualGateway grpc listener whose gateway route matches the service;
// the gateway's client speaks HTTP/2 to it, the proxy HTTP/2 to both
// servers.
TEST_F(ProxyH2Test, GrpcRoutesMatchMethodAndMetadata) {
  Upstreams* up = node_.AddGrpcUpstreams({{"unary"}, {"canary"}, {"rest"}});
  json method = {{"serviceName", "demo.Echo"}, {"methodName", "Unary"}};
  json canary = {
      {"serviceName", "demo.Echo"},
      {"metadata", {{{"name", "x-canary"}, {"match", {{"exact", "yes"}}}}}}};
  json model = {
      appmesh::Mesh(),
      Node("unary", up->port("unary"), "127.0.0.1", "grpc"),
      Node("canary", up->port("canary"), "127.0.0.1", "grpc"),
      Node("rest", up->port("rest"), "127.0.0.1", "grpc"),
      Router("r", 9000, "grpc"),
      Route("r", "by-method",
            {{"priority", 1},
             {"grpcRoute",
              {{"match", method}, {"action", Targets({{"unary", 1}})}}}}),
      Route("r", "by-metadata",
            {{"priority", 2},
             {"grpcRoute",
              {{"match", canary}, {"action", Targets({{"canary", 1}})}}}}),
      Route("r", "service",
            {{"priority", 3},
             {"grpcRoute",
              {{"match", {{"serviceName", "demo.Echo"}}},
               {"action", Targets({{"rest", 1}})}}}}),
      appmesh::ServiceByRouter("echo.m.local", "r"),
      GrpcGateway("gw", gw_port_),
      {{"meshName", "m"},
       {"virtualGatewayName", "gw"},
       {"gatewayRouteName", "echo"},
       {"spec",
        {{"grpcRoute",
          {{"match", {{"serviceName", "demo.Echo"}}},
           {"action",
            {{"target",
              {{"virtualService",
                {{"virtualServiceName", "echo.m.local"}}}}}}}}}}}}};
  ASSERT_TRUE(node_.Start(model));
  std::string call = absl::StrCat("--target 127.0.0.1:", gw_port_, " ");
  EXPECT_EQ(node_.GrpcCall(call + "--method Unary --data a"),
            "msg unary:a\nstatus OK\n");
  EXPECT_EQ(node_.GrpcCall(call + "--method ClientStream --data a "
                                  "--metadata x-canary=yes"),
            "msg canary:a\nstatus OK\n");
  EXPECT_EQ(node_.GrpcCall(call + "--method ClientStream --data a "
                                  "--metadata x-canary=no"),
            "msg rest:a\nstatus OK\n");
  // A method no route takes: UNIMPLEMENTED from the proxy, not a hang.
  std::string none = node_.GrpcCall(
      absl::StrCat("--target 127.0.0.1:", gw_port_, " --method Unary"));
  EXPECT_TRUE(absl::StrContains(none, "status OK")) << none;
}

// grpcRetryEvents: UNAVAILABLE in a trailers-only response is retried on
// the same request (the server counts attempts per x-request-id), and a
// status the policy does not name is not.
TEST_F(ProxyH2Test, GrpcRetryEventsRetryTrailersOnlyFailures) {
  Upstreams* up = node_.AddGrpcUpstreams({{"g"}});
  json retry = {{"maxRetries", 3},
                {"perRetryTimeout", {{"unit", "s"}, {"value", 5}}},
                {"grpcRetryEvents", {"unavailable", "resource-exhausted"}}};
  json model = {appmesh::Mesh(), Node("g", up->port("g"), "127.0.0.1", "grpc"),
                Router("r", 9000, "grpc"),
                Route("r", "retrying",
                      {{"grpcRoute",
                        {{"match", {{"serviceName", "demo.Echo"}}},
                         {"retryPolicy", retry},
                         {"action", Targets({{"g", 1}})}}}}),
                appmesh::ServiceByRouter("echo.m.local", "r")};
  ASSERT_TRUE(node_.Start(model));
  std::string call = absl::StrCat("--target 127.0.0.1:", node_.outbound_port(),
                                  " --authority echo.m.local:9000 ");
  EXPECT_EQ(node_.GrpcCall(call + "--metadata x-fail-first=2 --data r"),
            "msg g:r\nstatus OK\n");
  EXPECT_EQ(node_.GrpcCall(call + "--metadata x-fail-first=2 "
                                  "--metadata x-grpc-status=8 --data r"),
            "msg g:r\nstatus OK\n");
  // INTERNAL is not in the policy: one attempt, the client sees it.
  EXPECT_EQ(node_.GrpcCall(call + "--metadata x-fail-first=1 "
                                  "--metadata x-grpc-status=13"),
            "status INTERNAL asked to fail with 13\n");
  std::string stats = node_.GrpcCall(call + "--method Stats");
  // Two calls of three attempts and one of one.
  EXPECT_TRUE(absl::StrContains(stats, "\"calls\": 7")) << stats;
  std::string metrics = node_.Metrics();
  EXPECT_TRUE(absl::StrContains(metrics, "nodemesh_retries_total 4\n"))
      << metrics;
}

// grpc-timeout is the call's deadline at the proxy too: when it passes, the
// proxy answers DEADLINE_EXCEEDED (shorter than the route's 15 s default).
// The endpoint is upstream_server.py, which ignores grpc-timeout (a gRPC
// server would enforce the same deadline itself, and race the proxy).
TEST_F(ProxyH2Test, GrpcTimeoutHeaderBoundsTheCall) {
  Upstreams* up = node_.AddUpstreams({{"g"}});
  json model = {appmesh::Mesh(), Node("g", up->port("g")),
                appmesh::ServiceByNode("slow.m.local", "g")};
  ASSERT_TRUE(node_.Start(model));
  // One gRPC message "hi": flag 0, length 2.
  node_.Run("printf '\\000\\000\\000\\000\\002hi' > /tmp/" +
            std::to_string(gw_port_) + ".msg");
  std::string out = node_.Curl(absl::StrCat(
      "--http2-prior-knowledge -s -i -H 'content-type: application/grpc' "
      "-H 'te: trailers' -H 'grpc-timeout: 300m' -H 'x-delay-ms: 3000' "
      "-H 'host: slow.m.local:",
      up->port("g"), "' --data-binary @/tmp/", gw_port_,
      ".msg -w 'took %{time_total}\n' http://127.0.0.1:", node_.outbound_port(),
      "/demo.Echo/Unary"));
  EXPECT_TRUE(absl::StrContains(out, "grpc-status: 4")) << out;
  EXPECT_TRUE(absl::StrContains(out, "x-nodemesh-reason: request_timeout"))
      << out;
  double took = 99;
  size_t at = out.find("took ");
  if (at != std::string::npos) took = std::stod(out.substr(at + 5));
  EXPECT_LT(took, 2.0) << out;
  node_.Run("rm -f /tmp/" + std::to_string(gw_port_) + ".msg");
}

// A websocket over HTTP/2 (RFC 8441 extended CONNECT) to an HTTP/1.1
// websocket endpoint: the proxy sends the Upgrade handshake, answers 200 for
// the 101, and then carries a megabyte each way, in order, both ends closing
// cleanly.
TEST_F(ProxyH2Test, WebSocketOverHttp2ReachesAnHttp1Endpoint) {
  uint16_t port = PickPort();
  EchoServer echo(node_.netns(), port,
                  "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
                  "Upgrade: websocket\r\nSec-WebSocket-Accept: x\r\n\r\n");
  json model = {appmesh::Mesh(), Node("ws", port),
                appmesh::ServiceByNode("svc.m.local", "ws"),
                appmesh::Gateway("gw", gw_port_),
                GatewayRoute("gw", "all", "/", "svc.m.local")};
  ASSERT_TRUE(node_.Start(model));
  net::UniqueFd fd;
  {
    NetnsScope::Enter in(node_.netns());
    fd = Connect(absl::StrCat("127.0.0.1:", gw_port_));
  }
  ASSERT_TRUE(fd.valid());
  H2TestClient c(std::move(fd));
  // The server's SETTINGS first: extended CONNECT needs its consent.
  ASSERT_TRUE(c.PumpUntil(
      [&] { return c.codec_.PeerMaxConcurrentStreams() != 100; }, 5000));
  c.body.data = "early";
  std::vector<http::HeaderField> fields = {
      {":method", "CONNECT"},        {":protocol", "websocket"},
      {":scheme", "http"},           {":path", "/chat"},
      {":authority", "svc.m.local"}, {"sec-websocket-version", "13"}};
  int32_t id = c.codec_.SubmitRequest(fields, &c.body);
  ASSERT_GT(id, 0);
  ASSERT_TRUE(c.PumpUntil([&] { return c.status != 0; }, 5000))
      << c.closed << " " << c.close_code << " accepted " << echo.accepted()
      << " head: " << echo.head();
  EXPECT_EQ(c.status, 200) << c.headers;
  EXPECT_FALSE(absl::StrContains(c.headers, "sec-websocket-accept"));
  std::string pattern = Pattern(1 << 20);
  c.body.data.append(pattern);
  c.codec_.ResumeData(id, &c.body);
  ASSERT_TRUE(
      c.PumpUntil([&] { return c.data.size() >= 5 + pattern.size(); }, 20000))
      << c.data.size();
  EXPECT_TRUE(c.data == "early" + pattern);
  // The client ends its side; the endpoint's close ends the stream.
  c.body.end = true;
  c.codec_.ResumeData(id, &c.body);
  ASSERT_TRUE(c.PumpUntil([&] { return c.closed; }, 5000));
  EXPECT_TRUE(c.ended);
  EXPECT_EQ(c.close_code, 0u);
  EXPECT_TRUE(absl::StrContains(echo.head(), "upgrade: websocket"))
      << echo.head();
  EXPECT_TRUE(absl::StrContains(echo.head(), "sec-websocket-key: "))
      << echo.head();
  EXPECT_TRUE(absl::StartsWith(echo.head(), "GET /chat HTTP/1.1"))
      << echo.head();
  json stats = node_.AdminJson("/stats");
  EXPECT_EQ(stats["proxy"]["tunnels_total"], 1);
}

// Flow control end to end: an HTTP/2 client that stops reading a 64 MiB
// response stops the endpoint too (the proxy holds a window's worth, not
// the body); reading again, every byte arrives.
TEST_F(ProxyH2Test, StalledHttp2ReaderStopsTheEndpoint) {
  Upstreams* up = node_.AddUpstreams({{"big"}});
  json model = {appmesh::Mesh(), Node("big", up->port("big")),
                appmesh::ServiceByNode("svc.m.local", "big"),
                appmesh::Gateway("gw", gw_port_),
                GatewayRoute("gw", "all", "/", "svc.m.local")};
  ASSERT_TRUE(node_.Start(model));
  net::UniqueFd fd;
  {
    NetnsScope::Enter in(node_.netns());
    fd = Connect(absl::StrCat("127.0.0.1:", gw_port_));
  }
  ASSERT_TRUE(fd.valid());
  H2TestClient c(std::move(fd));
  c.consume = false;
  const size_t size = 64u << 20;
  size_t rss_before = RssOf(node_.agent().pid());
  std::vector<http::HeaderField> fields = {
      {":method", "GET"},
      {":scheme", "http"},
      {":path", "/big"},
      {":authority", "svc.m.local"},
      {"x-response-bytes", std::to_string(size)}};
  int32_t id = c.codec_.SubmitRequest(fields, nullptr);
  ASSERT_GT(id, 0);
  // Two seconds of not reading: the response stops at the client's window.
  c.PumpUntil([] { return false; }, 2000);
  EXPECT_EQ(c.status, 200);
  EXPECT_LE(c.data.size(), size_t{512} << 10) << c.data.size();
  size_t rss_stalled = RssOf(node_.agent().pid());
  EXPECT_LT(rss_stalled, rss_before + (size_t{16} << 20))
      << rss_before << " -> " << rss_stalled;
  c.consume = true;
  c.codec_.Consume(id, c.held);
  ASSERT_TRUE(c.PumpUntil([&] { return c.ended; }, 30000)) << c.data.size();
  EXPECT_EQ(c.data.size(), size);
  EXPECT_EQ(c.data.find_first_not_of('a'), std::string::npos);
}

// An HTTP/1.1 client calling a grpc listener's endpoint: the proxy speaks
// HTTP/2 upstream and returns the response chunked with its trailers.
TEST_F(ProxyH2Test, Http1ClientReachesAnHttp2OnlyEndpoint) {
  Upstreams* up = node_.AddGrpcUpstreams({{"g"}});
  json model = {appmesh::Mesh(), Node("g", up->port("g"), "127.0.0.1", "grpc"),
                appmesh::ServiceByNode("g.m.local", "g")};
  ASSERT_TRUE(node_.Start(model));
  std::string msg = absl::StrCat("/tmp/h1grpc-", gw_port_, ".msg");
  node_.Run("printf '\\000\\000\\000\\000\\002hi' > " + msg);
  std::string out = node_.Curl(absl::StrCat(
      "--http1.1 -s -i --raw -H 'content-type: application/grpc' "
      "-H 'te: trailers' -H 'host: g.m.local:",
      up->port("g"), "' --data-binary @", msg,
      " http://127.0.0.1:", node_.outbound_port(), "/demo.Echo/Unary"));
  node_.Run("rm -f " + msg);
  EXPECT_TRUE(absl::StartsWith(out, "HTTP/1.1 200")) << out;
  EXPECT_TRUE(absl::StrContains(out, "transfer-encoding: chunked")) << out;
  EXPECT_TRUE(absl::StrContains(out, "g:hi")) << out;
  EXPECT_TRUE(absl::StrContains(out, "grpc-status: 0")) << out;  // trailer
}

// The endpoint's SETTINGS_MAX_CONCURRENT_STREAMS is honoured: with 2
// streams allowed per connection, 12 concurrent slow calls are spread over
// new connections instead of queueing on one, and all succeed.
TEST_F(ProxyH2Test, EndpointStreamLimitOpensMoreConnections) {
  Upstreams* up = node_.AddGrpcUpstreams({{"g"}}, {"--max-streams", "2"});
  json model = {appmesh::Mesh(), Node("g", up->port("g"), "127.0.0.1", "grpc"),
                appmesh::ServiceByNode("g.m.local", "g")};
  ASSERT_TRUE(node_.Start(model, {"--workers=1"}));
  std::string call =
      absl::StrCat("--target 127.0.0.1:", node_.outbound_port(),
                   " --authority g.m.local:", up->port("g"), " ");
  // The first call learns the endpoint's SETTINGS.
  EXPECT_EQ(node_.GrpcCall(call + "--data x"), "msg g:x\nstatus OK\n");
  std::string out =
      node_.GrpcCall(call + "--parallel 12 --metadata x-delay-ms=500");
  std::string want;
  for (int i = 0; i < 12; ++i) want += "status OK\n";
  EXPECT_EQ(out, want);
  std::string metrics = node_.Metrics();
  size_t at = metrics.find("\nnodemesh_upstream_http2_connections_total ");
  ASSERT_NE(at, std::string::npos) << metrics;
  int opened = std::stoi(metrics.substr(at + 43));
  EXPECT_GE(opened, 6) << metrics.substr(at, 60);
}

// Malformed HTTP/2 after a valid preface: the connection ends with a
// GOAWAY naming the error, the metric counts it, and the proxy serves the
// next client as before.
TEST_F(ProxyH2Test, MalformedFramesEndTheConnectionWithGoaway) {
  Upstreams* up = node_.AddUpstreams({{"a"}});
  json model = {appmesh::Mesh(), Node("a", up->port("a")),
                appmesh::ServiceByNode("svc.m.local", "a"),
                appmesh::Gateway("gw", gw_port_),
                GatewayRoute("gw", "all", "/", "svc.m.local")};
  ASSERT_TRUE(node_.Start(model));
  net::UniqueFd fd;
  {
    NetnsScope::Enter in(node_.netns());
    fd = Connect(absl::StrCat("127.0.0.1:", gw_port_));
  }
  ASSERT_TRUE(fd.valid());
  // The preface, then a HEADERS frame on stream 0 (a connection error).
  std::string bytes("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24);
  bytes.append(std::string("\x00\x00\x00\x04\x00\x00\x00\x00\x00", 9));
  bytes.append(std::string("\x00\x00\x01\x01\x05\x00\x00\x00\x00\x82", 10));
  ASSERT_TRUE(WriteAll(fd.get(), bytes.data(), bytes.size()));
  std::string got;
  char buf[4096];
  while (true) {
    pollfd p{fd.get(), POLLIN, 0};
    if (::poll(&p, 1, 3000) != 1) break;
    ssize_t n = ::recv(fd.get(), buf, sizeof(buf), 0);
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  // Frames: 9-byte headers; find a GOAWAY (type 7) with PROTOCOL_ERROR (1).
  bool goaway = false;
  for (size_t at = 0; at + 9 <= got.size();) {
    size_t len = (static_cast<uint8_t>(got[at]) << 16) |
                 (static_cast<uint8_t>(got[at + 1]) << 8) |
                 static_cast<uint8_t>(got[at + 2]);
    if (got[at + 3] == 7 && at + 9 + 8 <= got.size())
      goaway = static_cast<uint8_t>(got[at + 9 + 7]) == 1;
    at += 9 + len;
  }
  EXPECT_TRUE(goaway) << got.size();
  EXPECT_TRUE(absl::StrContains(
      node_.Metrics(), "nodemesh_downstream_http2_protocol_errors_total 1\n"));
  std::string out =
      node_.Curl("--http2-prior-knowledge -s '" + Gw("/after") + "'");
  EXPECT_EQ(out, "a\n");
}

}  // namespace
}  // namespace nodemesh::testing
