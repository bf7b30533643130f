#pragma once

// W3C Trace Context (https://www.w3.org/TR/trace-context/) `traceparent`:
// "version-traceid-parentid-flags" in lowercase hex, e.g.
// "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".

#include <cstdint>
#include <string>
#include <string_view>

namespace nodemesh::http {

// Length of a version 00 traceparent.
inline constexpr size_t kTraceparentSize = 55;

// Whether `value` is a traceparent a proxy may forward: version 00 exactly
// 55 characters; a later version (not ff) at least 55 with '-' after the
// known fields; lowercase hex; trace-id and parent-id not all zeros.
bool IsValidTraceparent(std::string_view value);

// Appends a version 00 traceparent with trace-id `trace_hi`:`trace_lo`,
// parent-id `parent` and flags 00 (not sampled). An all-zero id is made
// non-zero, as the format requires.
void AppendTraceparent(uint64_t trace_hi, uint64_t trace_lo, uint64_t parent,
                       std::string* out);

}  // namespace nodemesh::http
