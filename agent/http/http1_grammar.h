#pragma once

#include <array>
#include <cstdint>
#include <string_view>

namespace nodemesh::http {

// Character classes and small parsers from RFC 9110/9112, shared by the
// parser and the writer so both agree on what a valid message is.

namespace internal {
constexpr std::array<bool, 256> MakeTokenTable() {
  std::array<bool, 256> t{};
  for (int c = '0'; c <= '9'; ++c) t[c] = true;
  for (int c = 'a'; c <= 'z'; ++c) t[c] = true;
  for (int c = 'A'; c <= 'Z'; ++c) t[c] = true;
  for (char c : std::string_view("!#$%&'*+-.^_`|~")) {
    t[static_cast<unsigned char>(c)] = true;
  }
  return t;
}
inline constexpr std::array<bool, 256> kTokenChars = MakeTokenTable();
}  // namespace internal

// tchar: the bytes of methods, field names and transfer codings.
inline bool IsTokenChar(char c) {
  return internal::kTokenChars[static_cast<unsigned char>(c)];
}
// field-value, reason-phrase and chunk-ext bytes: HTAB, SP, VCHAR, obs-text.
inline bool IsFieldTextChar(char c) {
  const unsigned char u = static_cast<unsigned char>(c);
  return u == '\t' || (u >= 0x20 && u != 0x7f);
}
inline bool IsOws(char c) { return c == ' ' || c == '\t'; }
inline bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// 1*tchar
bool IsToken(std::string_view s);
// *(HTAB / SP / VCHAR / obs-text)
bool IsFieldText(std::string_view s);
// A request-target: one or more visible bytes, no controls, space or DEL.
bool IsRequestTarget(std::string_view s);

std::string_view TrimOws(std::string_view s);

// 0-15 for a hex digit, -1 otherwise.
int HexDigitValue(char c);

// "HTTP/1.x": returns 0 and sets *minor (1.2 and later count as 1.1); 505
// for another major version; 400 when it is not an HTTP-version at all.
int ParseHttpVersion(std::string_view v, int* minor);

// 1*19DIGIT (always fits in uint64_t); no sign, no spaces.
bool ParseDecimal(std::string_view s, uint64_t* out);

}  // namespace nodemesh::http
