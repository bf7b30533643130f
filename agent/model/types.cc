#include "agent/model/types.h"

#include <limits>

#include "agent/model/enum_names.h"

namespace nodemesh::model {

int64_t Duration::ToMillis() const {
  if (unit == DurationUnit::kMs) return value;
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  if (value > kMax / 1000) return kMax;
  if (value < -(kMax / 1000)) return -kMax;
  return value * 1000;
}

std::string_view EnumName(DurationUnit v) { return internal::NameOf(v); }
std::string_view EnumName(PortProtocol v) { return internal::NameOf(v); }
std::string_view EnumName(IpPreference v) { return internal::NameOf(v); }
std::string_view EnumName(TlsMode v) { return internal::NameOf(v); }
std::string_view EnumName(HttpMethod v) { return internal::NameOf(v); }
std::string_view EnumName(HttpScheme v) { return internal::NameOf(v); }
std::string_view EnumName(EgressFilterType v) { return internal::NameOf(v); }
std::string_view EnumName(GrpcRetryEvent v) { return internal::NameOf(v); }
std::string_view EnumName(TcpRetryEvent v) { return internal::NameOf(v); }
std::string_view EnumName(DnsResponseType v) { return internal::NameOf(v); }
std::string_view EnumName(DefaultGatewayRouteRewrite v) {
  return internal::NameOf(v);
}

const std::vector<std::string>& DefaultedFields(const AnySpec& spec) {
  return std::visit(
      [](const auto& s) -> const std::vector<std::string>& {
        return s.defaulted_fields;
      },
      spec);
}

}  // namespace nodemesh::model
