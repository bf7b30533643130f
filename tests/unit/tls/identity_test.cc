#include "agent/tls/identity.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace nodemesh::tls {
namespace {

PeerIdentity Peer() {
  PeerIdentity peer;
  peer.presented = true;
  peer.verified = true;
  peer.uri_sans = {"spiffe://example.org/ns/mesh/vn/web"};
  peer.dns_sans = {"web.example.org"};
  peer.spiffe_id = peer.uri_sans[0];
  return peer;
}

TEST(TlsSanMatchesTest, EmptyListMatchesAnyone) {
  EXPECT_TRUE(SanMatches(Peer(), {}));
  EXPECT_TRUE(SanMatches(PeerIdentity{}, {}));
}

TEST(TlsSanMatchesTest, AnyUriOrDnsSanEqualToAnyListedName) {
  std::vector<std::string> uri = {"spiffe://other/x",
                                  "spiffe://example.org/ns/mesh/vn/web"};
  EXPECT_TRUE(SanMatches(Peer(), uri));
  std::vector<std::string> dns = {"web.example.org"};
  EXPECT_TRUE(SanMatches(Peer(), dns));
}

TEST(TlsSanMatchesTest, OnlyExactEquality) {
  for (const char* near :
       {"spiffe://example.org/ns/mesh/vn/we",
        "spiffe://example.org/ns/mesh/vn/web/",
        "spiffe://example.org/ns/mesh/vn/web2",
        "SPIFFE://example.org/ns/mesh/vn/web",
        "spiffe://example.org/ns/mesh/vn/WEB", "*.example.org", "example.org",
        "WEB.example.org", ""}) {
    std::vector<std::string> exact = {near};
    EXPECT_FALSE(SanMatches(Peer(), exact)) << near;
  }
}

TEST(TlsSanMatchesTest, APeerWithoutSansMatchesNothingListed) {
  std::vector<std::string> exact = {"spiffe://example.org/ns/mesh/vn/web"};
  EXPECT_FALSE(SanMatches(PeerIdentity{}, exact));
}

TEST(TlsSpiffeIdForTest, Layout) {
  EXPECT_EQ(SpiffeIdFor("example.org", "mesh", "web"),
            "spiffe://example.org/ns/mesh/vn/web");
}

TEST(TlsPeerOfTest, NoSession) {
  PeerIdentity peer = PeerOf(nullptr);
  EXPECT_FALSE(peer.presented);
  EXPECT_FALSE(peer.verified);
  EXPECT_FALSE(peer.error.empty());
}

}  // namespace
}  // namespace nodemesh::tls
