// nodemeshctl: looks at a running agent (admin endpoint) and at the pinned
// datapath of this node.
#include <cctype>
#include <iostream>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "agent/datapath/datapath_maps.h"
#include "ctl/admin_client.h"
#include "ctl/validate_command.h"
#include "gflags/gflags.h"
#include "nlohmann/json.hpp"

DEFINE_string(agent, "http://127.0.0.1:15000", "The agent's admin address");
DEFINE_string(bpf_pin_dir, "/sys/fs/bpf/nodemesh",
              "The agent's pin dir (for `maps`)");
DEFINE_string(kind, "",
              "validate: read spec-only files ({\"spec\": ...}) as this kind "
              "(VirtualNode, Route, ...), references unchecked; resources: "
              "only this kind");
DEFINE_string(output, "text", "validate: text or json");
DEFINE_string(mesh, "", "resources, show: only this mesh");

namespace {

constexpr char kUsage[] =
    "nodemeshctl COMMAND\n"
    "  status   the agent's readiness, per component (GET /ready)\n"
    "  stats    the agent's counters as JSON (GET /stats)\n"
    "  maps     the pinned datapath maps: entries and counters\n"
    "  config   the mesh model the agent serves (GET /config_dump)\n"
    "  routes   the proxy's route tables, in match order (GET /routes)\n"
    "  clusters the proxy's clusters and their endpoints (GET /clusters)\n"
    "  resources [--kind KIND] [--mesh M]\n"
    "           the resources the agent serves, one line each\n"
    "  show KIND NAME [--mesh M]\n"
    "           one resource as the agent serves it (API shape, defaults\n"
    "           applied, and where it came from)\n"
    "  validate PATH [--kind KIND] [--output text|json]\n"
    "           check a config dir or file as the agent would; exit 0 valid,\n"
    "           1 invalid (every error listed with file, resource, field)\n";

int PrintAdmin(const std::string& path) {
  auto reply = nodemesh::ctl::Get(FLAGS_agent, path);
  if (!reply.ok()) {
    std::cerr << "nodemeshctl: " << reply.status().message() << "\n";
    return 1;
  }
  std::cout << reply->body;
  return reply->status == 200 ? 0 : 1;
}

// The snapshot the agent serves, from /config_dump.
std::optional<nlohmann::json> ConfigDump() {
  auto reply = nodemesh::ctl::Get(FLAGS_agent, "/config_dump");
  if (!reply.ok()) {
    std::cerr << "nodemeshctl: " << reply.status().message() << "\n";
    return std::nullopt;
  }
  auto j = nlohmann::json::parse(reply->body, nullptr, false);
  if (reply->status != 200 || !j.is_object()) {
    std::cerr << "nodemeshctl: the agent answered " << reply->status << "\n";
    return std::nullopt;
  }
  return j;
}

std::string NameOf(const nlohmann::json& entry) {
  const auto& r = entry["resource"];
  std::string kind = entry.value("kind", "");
  std::string key =
      kind == "Mesh" ? "meshName"
      : kind.empty()
          ? ""
          : std::string(1, static_cast<char>(std::tolower(kind[0]))) +
                kind.substr(1) + "Name";
  std::string name = r.value(key, "");
  if (r.contains("virtualRouterName") && kind == "Route")
    name = r["virtualRouterName"].get<std::string>() + "/" + name;
  if (r.contains("virtualGatewayName") && kind == "GatewayRoute")
    name = r["virtualGatewayName"].get<std::string>() + "/" + name;
  return name;
}

int PrintResources(const std::string& kind) {
  auto dump = ConfigDump();
  if (!dump) return 1;
  std::cout << "snapshot v" << (*dump)["version"] << " "
            << (*dump)["hash"].get<std::string>() << "\n";
  for (const auto& e : (*dump)["resources"]) {
    if (!kind.empty() && e.value("kind", "") != kind) continue;
    std::string mesh = e["resource"].value("meshName", "");
    if (!FLAGS_mesh.empty() && mesh != FLAGS_mesh) continue;
    std::cout << e.value("kind", "") << "\t" << mesh << "\t" << NameOf(e)
              << "\t" << e.value("source", "")
              << (e.value("implicit", false) ? " (implicit)" : "") << "\n";
  }
  return 0;
}

int ShowResource(const std::string& kind, const std::string& name) {
  auto dump = ConfigDump();
  if (!dump) return 1;
  for (const auto& e : (*dump)["resources"]) {
    if (e.value("kind", "") != kind || NameOf(e) != name) continue;
    if (!FLAGS_mesh.empty() &&
        e["resource"].value("meshName", "") != FLAGS_mesh)
      continue;
    std::cout << e.dump(2) << "\n";
    return 0;
  }
  std::cerr << "nodemeshctl: no " << kind << " " << name
            << (FLAGS_mesh.empty() ? "" : " in mesh " + FLAGS_mesh)
            << " (routes are ROUTER/ROUTE)\n";
  return 1;
}

int PrintMaps() {
  auto maps = nodemesh::datapath::DatapathMaps::Open(FLAGS_bpf_pin_dir);
  if (!maps.ok()) {
    std::cerr << "nodemeshctl: " << maps.status().message()
              << " (is the agent's --bpf_pin_dir " << FLAGS_bpf_pin_dir
              << "?)\n";
    return 1;
  }
  nlohmann::json out;
  for (const auto& name : nodemesh::datapath::PinnedMapNames())
    if (auto n = maps->CountEntries(name); n.ok() && name != "nm_stats" &&
                                           name != "nm_config" &&
                                           name != "nm_layout")
      out["entries"][name] = *n;
  if (auto stats = maps->ReadStats(); stats.ok())
    for (size_t i = 0; i < stats->size(); ++i)
      out["counters"][nodemesh::datapath::StatNames()[i]] = (*stats)[i];
  if (auto c = maps->ReadConfig(); c.ok())
    out["config"] = {{"outbound_port", c->outbound_port},
                     {"dns_port", c->dns_port},
                     {"sockmap", c->sockmap != 0},
                     {"agent_mark", c->agent_mark}};
  std::cout << out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace)
            << "\n";
  return 0;
}

int Main(int argc, char** argv) {
  gflags::SetUsageMessage(kUsage);
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  if (argc < 2) {
    std::cerr << kUsage;
    return 2;
  }
  std::string command = argv[1];
  if (command == "status") return PrintAdmin("/ready");
  if (command == "stats") return PrintAdmin("/stats");
  if (command == "maps") return PrintMaps();
  if (command == "config") return PrintAdmin("/config_dump");
  if (command == "routes") return PrintAdmin("/routes");
  if (command == "clusters") return PrintAdmin("/clusters");
  if (command == "resources") return PrintResources(FLAGS_kind);
  if (command == "show") {
    if (argc < 4) {
      std::cerr << "nodemeshctl show KIND NAME [--mesh M]\n";
      return 2;
    }
    return ShowResource(argv[2], argv[3]);
  }
  if (command == "validate") {
    if (argc < 3) {
      std::cerr << "nodemeshctl validate PATH [--kind KIND] [--output json]\n";
      return 2;
    }
    return nodemesh::ctl::RunValidate(argv[2], FLAGS_kind, FLAGS_output);
  }
  std::cerr << "nodemeshctl: unknown command " << command << "\n" << kUsage;
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return Main(argc, argv);
  } catch (const std::exception& e) {
    // nlohmann::json throws on what it cannot print; say so, don't abort.
    std::cerr << "nodemeshctl: " << e.what() << "\n";
    return 1;
  }
}
