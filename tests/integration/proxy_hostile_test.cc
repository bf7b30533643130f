// Every malformed or hostile request of the parser's corpus, sent over a
// socket to a gateway listener of a real agent: each is answered with its
// 4xx and the connection is closed, while a keep-alive connection of another
// client on the same worker keeps being served between them.

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/integration/proxy_fixture.h"
#include "tests/unit/http/hostile_corpus.h"

namespace nodemesh::testing {
namespace {

using nlohmann::json;

TEST(ProxyHostileTest,
     EveryHostileRequestIsRefusedAndClosedWhileOthersAreServed) {
  ProxyNode node;
  Upstreams* up = node.AddUpstreams({{"app"}});
  uint16_t gw = PickPort();
  json model = {appmesh::Mesh(), appmesh::Node("app", up->port("app")),
                appmesh::ServiceByNode("svc.m.local", "app"),
                appmesh::Gateway("gw", gw),
                appmesh::GatewayRoute("gw", "all", "/", "svc.m.local")};
  // One worker: the bystander shares it with every hostile connection.
  ASSERT_TRUE(node.Start(model, {"--workers=1"}));

  std::vector<http::testing::OwnedHostileRequest> cases;
  for (const auto& c : http::testing::kHostileRequests)
    cases.push_back({c.name, c.expected_status, std::string(c.bytes)});
  for (auto& c : http::testing::OversizedRequests())
    cases.push_back(std::move(c));
  ASSERT_GE(cases.size(), 50u);

  RawClient bystander(node.netns(), gw);
  ASSERT_TRUE(bystander.connected());
  const std::string good = "GET /ok HTTP/1.1\r\nHost: svc\r\n\r\n";
  for (const auto& c : cases) {
    RawResponse r = RawExchange(node.netns(), gw, c.bytes);
    EXPECT_EQ(r.status, c.expected_status) << c.name << "\n" << r.head;
    EXPECT_TRUE(r.closed) << c.name;
    EXPECT_TRUE(absl::StrContains(r.head, "x-nodemesh-reason: bad_request"))
        << c.name;
    RawResponse ok = bystander.Exchange(good);
    ASSERT_EQ(ok.status, 200) << "after " << c.name;
  }
  // None of them reached the upstream: only the bystander's requests did.
  json stats = node.UpstreamStats(up->port("app"));
  EXPECT_EQ(stats["requests"].get<size_t>(), cases.size()) << stats.dump();
  std::string metrics = node.Metrics();
  EXPECT_TRUE(absl::StrContains(
      metrics,
      absl::StrCat("nodemesh_local_replies_total{reason=\"bad_request\"} ",
                   cases.size())));
}

}  // namespace
}  // namespace nodemesh::testing
