// nodemeshctl: looks at a running agent (admin endpoint) and at the pinned
// datapath of this node.
#include <cctype>
#include <iostream>
#include <optional>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "agent/datapath/datapath_maps.h"
#include "ctl/admin_client.h"
#include "ctl/maps_command.h"
#include "ctl/run_command.h"
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
DEFINE_string(output, "text", "validate, maps: text or json");
DEFINE_string(mesh, "",
              "run: the workload's mesh; resources, show: only this mesh");
DEFINE_string(admin_socket, "/run/nodemesh/agent.sock",
              "run: the agent's root-only control socket");
DEFINE_string(virtual_node, "",
              "run: the virtual node the workload runs as (--virtual-node)");
DEFINE_string(address, "",
              "run: the IP the workload's listeners bind (default 127.0.0.1)");
DEFINE_string(netns, "",
              "run: a network namespace (path) to run the workload in");
DEFINE_string(ports, "",
              "run: ports the workload listens on, comma-separated (default: "
              "the virtual node's listener ports)");
DEFINE_string(attributes, "",
              "run: k=v,... instance attributes (awsCloudMap discovery)");

namespace {

constexpr char kUsage[] =
    "nodemeshctl COMMAND\n"
    "  run --mesh M --virtual-node V [--address A] [--netns PATH] -- CMD...\n"
    "           run CMD as a workload of virtual node V (registers it\n"
    "           through --admin_socket; ends when its processes exit)\n"
    "  workloads the workloads the agent knows (GET /workloads)\n"
    "  status   the agent's readiness, per component (GET /ready)\n"
    "  stats    the agent's counters as JSON (GET /stats)\n"
    "  maps [--output json]\n"
    "           the pinned datapath maps decoded, with service and\n"
    "           workload names\n"
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

int Main(int argc, char** argv) {
  gflags::SetUsageMessage(kUsage);
  // DESIGN spells it --virtual-node; gflags names cannot hold '-'. Only
  // arguments before "--" are ours (after it comes the workload's command).
  std::vector<std::string> storage;
  std::vector<std::string> workload_command;
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--") {
      workload_command.assign(argv + i + 1, argv + argc);
      break;
    }
    if (a.rfind("--virtual-node", 0) == 0) a.replace(0, 14, "--virtual_node");
    if (a.rfind("--admin-socket", 0) == 0) a.replace(0, 14, "--admin_socket");
    storage.push_back(a);
  }
  std::vector<char*> args;
  args.reserve(storage.size() + 1);
  for (std::string& a : storage) args.push_back(a.data());
  args.push_back(nullptr);
  argc = static_cast<int>(storage.size());
  argv = args.data();
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  if (argc < 2) {
    std::cerr << kUsage;
    return 2;
  }
  std::string command = argv[1];
  if (command == "status") return PrintAdmin("/ready");
  if (command == "stats") return PrintAdmin("/stats");
  if (command == "maps")
    return nodemesh::ctl::PrintMaps(FLAGS_bpf_pin_dir, FLAGS_agent,
                                    FLAGS_output);
  if (command == "workloads") return nodemesh::ctl::PrintWorkloads(FLAGS_agent);
  if (command == "run") {
    nodemesh::ctl::RunOptions o;
    o.admin_socket = "unix:" + FLAGS_admin_socket;
    o.mesh = FLAGS_mesh;
    o.virtual_node = FLAGS_virtual_node;
    o.address = FLAGS_address;
    o.netns = FLAGS_netns;
    for (absl::string_view p :
         absl::StrSplit(FLAGS_ports, ',', absl::SkipEmpty())) {
      int port = 0;
      if (!absl::SimpleAtoi(p, &port) || port < 1 || port > 65535) {
        std::cerr << "nodemeshctl run: --ports: " << p << " is not a port\n";
        return 2;
      }
      o.ports.push_back(port);
    }
    for (absl::string_view kv :
         absl::StrSplit(FLAGS_attributes, ',', absl::SkipEmpty())) {
      std::pair<std::string, std::string> p =
          absl::StrSplit(kv, absl::MaxSplits('=', 1));
      o.attributes[p.first] = p.second;
    }
    return nodemesh::ctl::RunWorkload(o, workload_command);
  }
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
