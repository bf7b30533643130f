#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "agent/model/json.h"

namespace nodemesh::model {

// One YAML document as JSON, and where it starts.
struct YamlDocument {
  rapidjson::Document doc;
  int line = 1;  // 1-based line of the document's first node
};

struct YamlError {
  std::string message;
  int line = 0;  // 1-based
};

// Reads every document of a YAML stream (JSON is YAML too) into JSON values,
// with libyaml. Plain scalars are typed as YAML 1.2's core schema types them
// (null, true/false, integers, floats, else strings); quoted or !!str-tagged
// scalars stay strings. Aliases are expanded, within a bound on the nodes
// they may produce (no "billion laughs"), and nesting is bounded too.
// libyaml rather than yaml-cpp: Debian's yaml-cpp 0.7 spends minutes and
// gigabytes on some malformed files, and a config file must never be able
// to stall the agent. Returns false, with the error's line, on bad YAML.
bool ReadYamlDocuments(std::string_view text, std::vector<YamlDocument>* out,
                       YamlError* error);

}  // namespace nodemesh::model
