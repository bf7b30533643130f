#include "ctl/validate_command.h"

#include <filesystem>
#include <iostream>

#include "agent/model/json.h"
#include "agent/model/snapshot.h"

namespace nodemesh::ctl {
namespace {

namespace fs = std::filesystem;
using model::Diagnostic;

const char* SeverityName(Diagnostic::Severity s) {
  switch (s) {
    case Diagnostic::Severity::kError:
      return "error";
    case Diagnostic::Severity::kWarning:
      return "warning";
    case Diagnostic::Severity::kNote:
      return "note";
  }
  return "?";
}

void PrintJson(const model::SnapshotBuilder::Result& r) {
  rapidjson::Document doc(rapidjson::kObjectType);
  auto& alloc = doc.GetAllocator();
  auto str = [&](const std::string& s) {
    return rapidjson::Value(s.c_str(), alloc);
  };
  doc.AddMember("valid", r.snapshot != nullptr, alloc);
  doc.AddMember(
      "resources",
      static_cast<uint64_t>(r.snapshot ? r.snapshot->resources.size() : 0),
      alloc);
  rapidjson::Value errors(rapidjson::kArrayType),
      warnings(rapidjson::kArrayType);
  for (const auto& d : r.diagnostics.items()) {
    if (d.severity == Diagnostic::Severity::kNote) continue;
    rapidjson::Value e(rapidjson::kObjectType);
    e.AddMember("file", str(d.where.file), alloc);
    if (d.where.document >= 0) e.AddMember("document", d.where.document, alloc);
    if (d.where.line > 0) e.AddMember("line", d.where.line, alloc);
    e.AddMember("resource", str(d.resource), alloc);
    e.AddMember("field", str(d.field_path), alloc);
    e.AddMember("message", str(d.message), alloc);
    (d.severity == Diagnostic::Severity::kError ? errors : warnings)
        .PushBack(e, alloc);
  }
  doc.AddMember("errors", errors, alloc);
  doc.AddMember("warnings", warnings, alloc);
  rapidjson::StringBuffer sb;
  rapidjson::PrettyWriter<rapidjson::StringBuffer> w(sb);
  w.SetIndent(' ', 2);
  doc.Accept(w);
  std::cout << sb.GetString() << "\n";
}

}  // namespace

int RunValidate(const std::string& path, const std::string& kind,
                const std::string& output) {
  if (output != "text" && output != "json") {
    std::cerr << "nodemeshctl validate: --output is text or json\n";
    return 2;
  }
  std::optional<model::ResourceKind> spec_kind;
  if (!kind.empty()) {
    spec_kind = model::KindFromName(kind);
    if (!spec_kind) {
      std::cerr << "nodemeshctl validate: --kind " << kind
                << " is not an App Mesh kind (Mesh, VirtualService, "
                   "VirtualRouter, Route, VirtualNode, VirtualGateway, "
                   "GatewayRoute)\n";
      return 2;
    }
  }
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    std::cerr << "nodemeshctl validate: " << path << " does not exist\n";
    return 2;
  }
  model::SnapshotBuilder::Result result;
  if (fs::is_directory(path, ec)) {
    model::SnapshotBuilder builder(path, spec_kind);
    result = builder.Build(nullptr);
  } else {
    fs::path p(path);
    model::SnapshotBuilder builder(
        p.has_parent_path() ? p.parent_path().string() : ".", spec_kind);
    result = builder.BuildFiles({p.filename().string()}, nullptr);
  }
  if (output == "json") {
    PrintJson(result);
  } else {
    for (const auto& d : result.diagnostics.items())
      if (d.severity != Diagnostic::Severity::kNote)
        std::cout << SeverityName(d.severity) << ": " << d.ToString() << "\n";
    if (result.snapshot)
      std::cout << "valid: " << result.snapshot->resources.size()
                << " resources\n";
    else
      std::cout << "invalid: " << result.diagnostics.error_count()
                << " error(s)\n";
  }
  return result.snapshot ? 0 : 1;
}

}  // namespace nodemesh::ctl
