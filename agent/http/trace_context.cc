#include "agent/http/trace_context.h"

namespace nodemesh::http {
namespace {

bool IsLowerHex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

// `n` lowercase hex digits at `s`, not all '0' when `nonzero`.
bool HexField(std::string_view s, bool nonzero) {
  bool any = false;
  for (char c : s) {
    if (!IsLowerHex(c)) return false;
    any |= c != '0';
  }
  return any || !nonzero;
}

void AppendHex(uint64_t v, int digits, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (int i = digits - 1; i >= 0; --i)
    out->push_back(kHex[(v >> (i * 4)) & 15]);
}

}  // namespace

bool IsValidTraceparent(std::string_view v) {
  if (v.size() < kTraceparentSize) return false;
  std::string_view version = v.substr(0, 2);
  if (!HexField(version, false) || version == "ff") return false;
  // Version 00 has exactly these fields; a later one may append "-...".
  if (version == "00" ? v.size() != kTraceparentSize
                      : v.size() > kTraceparentSize && v[55] != '-') {
    return false;
  }
  return v[2] == '-' && v[35] == '-' && v[52] == '-' &&
         HexField(v.substr(3, 32), true) && HexField(v.substr(36, 16), true) &&
         HexField(v.substr(53, 2), false);
}

void AppendTraceparent(uint64_t trace_hi, uint64_t trace_lo, uint64_t parent,
                       std::string* out) {
  if (trace_hi == 0 && trace_lo == 0) trace_lo = 1;
  if (parent == 0) parent = 1;
  out->append("00-");
  AppendHex(trace_hi, 16, out);
  AppendHex(trace_lo, 16, out);
  out->push_back('-');
  AppendHex(parent, 16, out);
  out->append("-00");
}

}  // namespace nodemesh::http
