// Fuzzes the App Mesh spec codec: the input is parsed as JSON and decoded as
// the spec of every kind. Besides memory errors (ASan, UBSan) it checks the
// codec's contract: a spec decoded without errors encodes to JSON that
// decodes, without errors, to the same spec; and its defaulted form
// still decodes without errors.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "agent/model/defaults.h"
#include "agent/model/json_codec.h"

namespace nodemesh::model {
namespace {

void Check(ResourceKind kind, const rapidjson::Value& json) {
  static const SourceLocation kWhere{"fuzz"};
  static const std::string kResource = "fuzz";
  static const std::string kPrefix = "spec";
  Diagnostics diags;
  AnySpec spec = DecodeSpec(kind, json, kWhere, kResource, kPrefix, &diags);
  if (KindOf(spec) != kind) std::abort();
  if (diags.has_errors()) return;

  std::string encoded = EncodeSpecToString(spec);
  rapidjson::Document again;
  again.Parse(encoded.c_str(), encoded.size());
  if (again.HasParseError()) std::abort();
  Diagnostics diags2;
  AnySpec decoded =
      DecodeSpec(kind, again, kWhere, kResource, kPrefix, &diags2);
  // Warnings may repeat (an undocumented httpRetryEvent), errors may not.
  if (diags2.has_errors() || !(decoded == spec)) std::abort();

  ApplyDefaults(&spec);
  std::string defaulted = EncodeSpecToString(spec);
  rapidjson::Document third;
  third.Parse(defaulted.c_str(), defaulted.size());
  Diagnostics diags3;
  DecodeSpec(kind, third, kWhere, kResource, kPrefix, &diags3);
  if (diags3.has_errors()) std::abort();
}

}  // namespace
}  // namespace nodemesh::model

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using nodemesh::model::ResourceKind;
  rapidjson::Document doc;
  doc.Parse(reinterpret_cast<const char*>(data), size);
  if (doc.HasParseError()) return 0;
  // A whole create-* input ({"spec": ...}) or a bare spec.
  const rapidjson::Value* spec = &doc;
  if (doc.IsObject()) {
    auto it = spec->FindMember("spec");
    if (it != spec->MemberEnd()) spec = &it->value;
  }
  for (ResourceKind kind : nodemesh::model::AllKinds()) {
    nodemesh::model::Check(kind, *spec);
  }
  return 0;
}
