#include "agent/dns/dns_message.h"

#include <cctype>

namespace nodemesh::dns {
namespace {

uint16_t Read16(std::string_view b, size_t at) {
  return static_cast<uint16_t>(static_cast<uint8_t>(b[at]) << 8 |
                               static_cast<uint8_t>(b[at + 1]));
}

void Put16(std::string* out, uint16_t v) {
  out->push_back(static_cast<char>(v >> 8));
  out->push_back(static_cast<char>(v & 0xff));
}

void Put32(std::string* out, uint32_t v) {
  Put16(out, static_cast<uint16_t>(v >> 16));
  Put16(out, static_cast<uint16_t>(v & 0xffff));
}

constexpr size_t kHeader = 12;
constexpr uint16_t kFlagQr = 0x8000;
constexpr uint16_t kFlagAa = 0x0400;
constexpr uint16_t kFlagRd = 0x0100;
constexpr uint16_t kFlagRa = 0x0080;
constexpr uint16_t kOpcodeMask = 0x7800;

}  // namespace

std::optional<DnsQuestion> ParseQuery(std::string_view b) {
  if (b.size() < kHeader || b.size() > 65535) return std::nullopt;
  DnsQuestion q;
  q.id = Read16(b, 0);
  q.flags = Read16(b, 2);
  if (q.flags & kFlagQr) return std::nullopt;             // a response
  if ((q.flags & kOpcodeMask) != 0) return std::nullopt;  // not QUERY
  if (Read16(b, 4) != 1) return std::nullopt;             // QDCOUNT
  size_t at = kHeader;
  while (true) {
    if (at >= b.size()) return std::nullopt;
    uint8_t len = static_cast<uint8_t>(b[at++]);
    if (len == 0) break;
    if (len > 63 || at + len > b.size()) return std::nullopt;  // or pointer
    if (!q.name.empty()) q.name.push_back('.');
    for (size_t i = 0; i < len; ++i)
      q.name.push_back(static_cast<char>(
          std::tolower(static_cast<unsigned char>(b[at + i]))));
    at += len;
    if (q.name.size() > 253) return std::nullopt;
  }
  if (at + 4 > b.size()) return std::nullopt;
  q.type = Read16(b, at);
  q.qclass = Read16(b, at + 2);
  q.question_end = at + 4;
  return q;
}

std::string BuildAnswer(std::string_view query, const DnsQuestion& q,
                        std::optional<uint32_t> ipv4, uint32_t ttl,
                        uint8_t rcode) {
  std::string out;
  out.reserve(q.question_end + 16);
  Put16(&out, q.id);
  Put16(&out, static_cast<uint16_t>(kFlagQr | kFlagAa | kFlagRa |
                                    (q.flags & kFlagRd) | (rcode & 0xf)));
  Put16(&out, 1);             // QDCOUNT
  Put16(&out, ipv4 ? 1 : 0);  // ANCOUNT
  Put16(&out, 0);             // NSCOUNT
  Put16(&out, 0);             // ARCOUNT (EDNS dropped)
  out.append(query.substr(kHeader, q.question_end - kHeader));
  if (ipv4) {
    Put16(&out, 0xc00c);  // the name: a pointer to the question's
    Put16(&out, kTypeA);
    Put16(&out, kClassIn);
    Put32(&out, ttl);
    Put16(&out, 4);
    Put32(&out, *ipv4);
  }
  return out;
}

std::string BuildError(std::string_view query, uint8_t rcode) {
  std::string out;
  if (query.size() < 2) return out;
  out.append(query.substr(0, 2));
  uint16_t flags = query.size() >= 4 ? Read16(query, 2) : 0;
  Put16(&out, static_cast<uint16_t>(kFlagQr | kFlagRa | (flags & kFlagRd) |
                                    (rcode & 0xf)));
  for (int i = 0; i < 4; ++i) Put16(&out, 0);
  return out;
}

}  // namespace nodemesh::dns
