// Every AWS-CLI JSON example that INDEX.md gives a kind for decodes without
// errors, survives an encode/decode round trip, and takes its defaults.

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "agent/model/defaults.h"
#include "agent/model/json_codec.h"
#include "gtest/gtest.h"

namespace nodemesh::model {
namespace {

namespace fs = std::filesystem;

struct Example {
  std::string path;
  ResourceKind kind;
};

std::string Trim(const std::string& s) {
  size_t b = s.find_first_not_of(" `");
  size_t e = s.find_last_not_of(" `");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

// Rows "| `file` | `source` | cli-json | Kind | ... |".
std::vector<Example> CliJsonExamples() {
  std::vector<Example> out;
  std::ifstream in(std::string(NODEMESH_CODEC_EXAMPLES_DIR) + "/INDEX.md");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("| `", 0) != 0) continue;
    std::vector<std::string> cells;
    std::stringstream ss(line.substr(1));
    std::string cell;
    while (std::getline(ss, cell, '|')) cells.push_back(Trim(cell));
    if (cells.size() < 4 || cells[2] != "cli-json") continue;
    std::optional<ResourceKind> kind = KindFromName(cells[3]);
    if (!kind) continue;  // no single kind given
    out.push_back({cells[0], *kind});
  }
  return out;
}

std::string Dump(const Diagnostics& d) {
  std::string out;
  for (const Diagnostic& x : d.items()) out += x.ToString() + "\n";
  return out;
}

TEST(JsonCodecExamplesTest, EveryCliJsonExampleDecodesWithoutErrors) {
  if (!fs::exists(NODEMESH_CODEC_EXAMPLES_DIR)) {
    GTEST_SKIP() << "no " << NODEMESH_CODEC_EXAMPLES_DIR;
  }
  std::vector<Example> examples = CliJsonExamples();
  ASSERT_GE(examples.size(), 80u);
  int warnings = 0;
  for (const Example& ex : examples) {
    SCOPED_TRACE(ex.path);
    std::ifstream in(fs::path(NODEMESH_CODEC_EXAMPLES_DIR) / ex.path);
    std::stringstream buf;
    buf << in.rdbuf();
    rapidjson::Document doc;
    doc.Parse(buf.str().c_str());
    ASSERT_FALSE(doc.HasParseError());
    ASSERT_TRUE(doc.IsObject());
    // A create-mesh input may be "{}": no spec at all.
    rapidjson::Value empty(rapidjson::kObjectType);
    const rapidjson::Value& root = doc;
    auto it = root.FindMember("spec");
    const rapidjson::Value& spec_json =
        it == root.MemberEnd() ? empty : it->value;

    Diagnostics diags;
    SourceLocation where{ex.path};
    AnySpec spec =
        DecodeSpec(ex.kind, spec_json, where, "example", "spec", &diags);
    EXPECT_FALSE(diags.has_errors()) << Dump(diags);
    EXPECT_EQ(KindOf(spec), ex.kind);
    warnings += static_cast<int>(diags.items().size() - diags.error_count());

    // Round trip.
    std::string json = EncodeSpecToString(spec);
    rapidjson::Document again;
    again.Parse(json.c_str());
    ASSERT_FALSE(again.HasParseError()) << json;
    Diagnostics diags2;
    AnySpec decoded =
        DecodeSpec(ex.kind, again, where, "example", "spec", &diags2);
    EXPECT_TRUE(diags2.items().empty()) << Dump(diags2);
    EXPECT_TRUE(decoded == spec) << json;

    // Defaults apply without touching what the file says, and stay valid.
    AnySpec defaulted = spec;
    ApplyDefaults(&defaulted);
    ApplyDefaults(&defaulted);  // idempotent
    std::string defaulted_json = EncodeSpecToString(defaulted);
    rapidjson::Document d3;
    d3.Parse(defaulted_json.c_str());
    Diagnostics diags3;
    DecodeSpec(ex.kind, d3, where, "example", "spec", &diags3);
    EXPECT_FALSE(diags3.has_errors()) << defaulted_json << Dump(diags3);
  }
  RecordProperty("warnings", warnings);
}

}  // namespace
}  // namespace nodemesh::model
