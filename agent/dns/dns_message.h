#pragma once

// Just enough of RFC 1035 for the mesh DNS: read the one question of a
// query, write an answer to it. Never follows compression pointers in a
// query (queries carry none) and never reads past the datagram.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace nodemesh::dns {

constexpr uint16_t kTypeA = 1;
constexpr uint16_t kTypeAAAA = 28;
constexpr uint16_t kClassIn = 1;
constexpr uint8_t kRcodeNoError = 0;
constexpr uint8_t kRcodeFormErr = 1;
constexpr uint8_t kRcodeServFail = 2;
constexpr uint8_t kRcodeNxDomain = 3;

struct DnsQuestion {
  uint16_t id = 0;
  uint16_t flags = 0;
  std::string name;  // lowercase, no trailing dot ("backend.shop.local")
  uint16_t type = 0;
  uint16_t qclass = 0;
  size_t question_end = 0;  // offset just past the question section
};

// Parses a standard query with exactly one question; nullopt otherwise.
std::optional<DnsQuestion> ParseQuery(std::string_view datagram);

// An answer to `q` (whose bytes are `query`): `ipv4` (host order) as one A
// record with `ttl`, or no record (NODATA) when ipv4 is nullopt, with
// `rcode`. Authoritative: the agent owns mesh names.
std::string BuildAnswer(std::string_view query, const DnsQuestion& q,
                        std::optional<uint32_t> ipv4, uint32_t ttl,
                        uint8_t rcode = kRcodeNoError);

// A header-only error reply (FORMERR, SERVFAIL) echoing the query's id.
std::string BuildError(std::string_view query, uint8_t rcode);

}  // namespace nodemesh::dns
