#pragma once

// Decodes and encodes resource specs in the App Mesh API JSON shape
// (camelCase keys, as `aws appmesh create-*` takes them and describe-*
// returns them).

#include <string>

#include "agent/model/json.h"
#include "agent/model/resource.h"
#include "agent/model/types.h"

namespace nodemesh::model {

// Decodes the "spec" object of a resource of `kind` in the App Mesh API
// shape (camelCase keys, as `aws appmesh create-*` takes them).
//
// Applies the field-level rules of the API model: JSON types, required
// members, enum spellings, numeric ranges, string lengths, list sizes and
// unions with exactly one member. Every finding names its full field path,
// starting with `path_prefix` ("spec", or "spec.routes[2]" for a
// Kubernetes inline route). Unknown fields are warnings; everything else is
// an error, and decoding goes on so that all errors are reported at once.
// The result is meaningful only when no error was added.
AnySpec DecodeSpec(ResourceKind kind, const rapidjson::Value& spec,
                   const SourceLocation& where, const std::string& resource,
                   const std::string& path_prefix, Diagnostics* diags);

// Writes `spec` as an API-shaped JSON object into `*out`. Only API fields are
// written (not defaulted_fields nor RouteSpec::implicit_retry_policy), so
// DecodeSpec(EncodeSpec(x)) == x for every x DecodeSpec returns without
// errors.
void EncodeSpec(const AnySpec& spec, rapidjson::Value* out,
                rapidjson::Document::AllocatorType& alloc);

// EncodeSpec into a compact JSON string (tests, logs).
std::string EncodeSpecToString(const AnySpec& spec);

}  // namespace nodemesh::model
