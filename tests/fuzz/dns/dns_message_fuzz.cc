// Any datagram a workload sends to the mesh DNS: ParseQuery must never read
// past it, and an answer built from what it accepted must hold the question
// verbatim.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "agent/dns/dns_message.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto q = nodemesh::dns::ParseQuery(in);
  (void)nodemesh::dns::BuildError(in, nodemesh::dns::kRcodeFormErr);
  if (!q) return 0;
  if (q->question_end > size || q->name.size() > 253) __builtin_trap();
  std::string a = nodemesh::dns::BuildAnswer(in, *q, 0x7f800002u, 30);
  if (a.size() < q->question_end ||
      a.compare(12, q->question_end - 12, in.substr(12, q->question_end - 12)))
    __builtin_trap();
  return 0;
}
