// The multi-node demo (scripts/cluster-demo): a cluster of three nodes on
// this machine, built with the integration tests' ClusterScope — network
// namespaces on a bridge, one nodemesh-agent each, with identities from a
// test CA — serving examples/cluster. It sends a few requests across nodes,
// shows what the bridge saw of them, prints how to look around, and runs
// until Ctrl-C or SIGTERM; then everything is removed.
//
//   cluster_demo [EXAMPLE_DIR]   (default: the tree's examples/cluster)

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "tests/integration/cluster_fixture.h"

namespace nodemesh::testing {
namespace {

std::atomic<bool> stop{false};

void OnSignal(int) { stop = true; }

bool ReadJson(const std::string& path, nlohmann::json* out) {
  std::ifstream in(path);
  *out = nlohmann::json::parse(in, nullptr, false);
  if (out->is_discarded()) {
    std::cerr << "cluster-demo: " << path << ": not valid JSON\n";
    return false;
  }
  return true;
}

// Every resource of the .json files in `dir`, as one array.
bool LoadModel(const std::string& dir, nlohmann::json* model) {
  std::vector<std::string> files;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec))
    if (e.path().extension() == ".json") files.push_back(e.path().string());
  if (ec || files.empty()) {
    std::cerr << "cluster-demo: no model files in " << dir << "\n";
    return false;
  }
  std::sort(files.begin(), files.end());
  *model = nlohmann::json::array();
  for (const std::string& f : files) {
    nlohmann::json j;
    if (!ReadJson(f, &j)) return false;
    if (j.is_array())
      for (auto& r : j) model->push_back(r);
    else
      model->push_back(j);
  }
  return true;
}

void Section(const std::string& title) {
  std::cout << "\ncluster-demo: " << title << "\n";
}

void Indented(const std::string& text) {
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty()))
    std::cout << "    " << line << "\n";
}

// Lines of `text` counted, as "  N  line".
std::string Tally(const std::string& text) {
  std::map<std::string, int> n;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    const std::string key(line);
    ++n[key];
  }
  std::string out;
  for (const auto& [line, count] : n)
    absl::StrAppend(&out, count, " x ", line, "\n");
  return out.empty() ? "(no answers)\n" : out;
}

std::string MetricLines(const std::string& metrics,
                        const std::vector<std::string>& families) {
  std::string out;
  for (absl::string_view l : absl::StrSplit(metrics, '\n')) {
    for (const std::string& f : families)
      if (absl::StartsWith(l, f)) absl::StrAppend(&out, l, "\n");
  }
  return out;
}

int Run(const std::string& example_dir) {
  nlohmann::json model, placement;
  if (!LoadModel(example_dir + "/mesh", &model) ||
      !ReadJson(example_dir + "/placement.json", &placement))
    return 2;
  int nodes = 0;
  for (const auto& p : placement) nodes = std::max(nodes, p.value("node", 0));
  if (nodes < 2) {
    std::cerr << "cluster-demo: placement.json names fewer than 2 nodes\n";
    return 2;
  }
  std::string mesh = placement[0].value("mesh", "");

  std::cout << "cluster-demo: bringing up " << nodes
            << " nodes (network namespaces on a bridge, one agent each)\n";
  auto owned = std::make_unique<ClusterScope>(nodes);
  ClusterScope& cluster = *owned;
  for (const auto& p : placement) {
    ClusterScope::Workload w;
    w.node = p.value("node", 0);
    w.mesh = p.value("mesh", mesh);
    w.virtual_node = p.value("virtualNode", "");
    w.port = p.value("port", uint16_t{0});
    cluster.AddWorkload(w);
  }
  if (!cluster.Start(model)) {
    std::cerr << "cluster-demo: the cluster did not come up (see above); "
                 "removing what was made\n";
    return 1;
  }
  const pid_t self = ::getpid();
  auto netns = [&](int k) {
    return absl::StrCat("/proc/", self, "/fd/", cluster.Node(k).netns_fd());
  };

  Section("the nodes (each agent's admin address is inside its namespace):");
  for (int k = 1; k <= nodes; ++k) {
    ProxyNode& n = cluster.Node(k);
    std::cout << "  " << ClusterScope::NodeName(k) << "  "
              << ClusterScope::NodeAddress(k) << "  agent pid "
              << n.agent().pid() << "  admin " << n.admin() << "  pins "
              << n.pin_dir() << "\n";
  }
  Section("the workloads (cluster/workloads.json, the same on every node):");
  for (const auto& w : cluster.workloads())
    std::cout << "  " << ClusterScope::NodeName(w.node) << "  " << w.mesh << "/"
              << w.virtual_node << " at " << w.address() << ":" << w.port
              << "\n";

  // Everything that crosses n1's port of the bridge from here on is
  // captured (on one port each packet shows once; on "any", twice).
  auto capture = cluster.Capture("tcp", "p1");
  Section(
      "20 requests from a workload of `web` on n1 to api.cluster.local:8080 "
      "(route api-split: api-v1 on n2 50, api-v2 on n3 50), each through "
      "the mutual-TLS tunnel to the node that runs the endpoint:");
  Indented(Tally(cluster.RunAsWorkload(
      1, mesh, "web",
      "curl -s --max-time 20 'http://api.cluster.local:8080/[1-20]'")));

  // A unique marker in a request body, echoed back: it must not cross the
  // bridge in plaintext.
  std::string marker = absl::StrCat("demo-secret-", std::random_device{}());
  Section(absl::StrCat("POST /echo with body \"", marker,
                       "\" from n1 to api.cluster.local; the answer:"));
  Indented(cluster.RunAsWorkload(
      1, mesh, "web",
      absl::StrCat("curl -s --max-time 20 --data-binary ", marker,
                   " http://api.cluster.local:8080/echo")));

  Section(
      "from n3, `web` calls cache.cluster.local:7000, whose one workload "
      "runs on n1:");
  Indented(cluster.RunAsWorkload(
      3, mesh, "web",
      "curl -s --max-time 20 http://cache.cluster.local:7000/"));

  Section("and from n1 itself (same node: the bridge never sees it):");
  Indented(cluster.RunAsWorkload(
      1, mesh, "web",
      "curl -s --max-time 20 http://cache.cluster.local:7000/"));
  capture->Stop();

  Section(
      "what n1's port of the bridge saw meanwhile (tcpdump in the fabric "
      "namespace, decoded by tshark; the first TLS packets):");
  Indented(capture->Summary("tls", "tcp.port==15008,tls", 8));
  std::cout << "    ... " << capture->Count("tcp") << " TCP packets, all to or "
            << "from port 15008: "
            << (capture->Count("!(tcp.port == 15008)") == 0 ? "yes" : "NO")
            << "; the marker appears in them: "
            << (capture->Bytes().find(marker) == std::string::npos ? "no"
                                                                   : "YES")
            << "\n";

  Section("the tunnel's counters (GET /metrics on each node):");
  for (int k = 1; k <= nodes; ++k) {
    std::cout << "  " << ClusterScope::NodeName(k) << ":\n";
    Indented(MetricLines(cluster.Node(k).Metrics(),
                         {"nodemesh_tunnel_connections_total",
                          "nodemesh_tunnel_streams_total"}));
  }
  Section("identities minted on n2 from its intermediate CA (GET /certs):");
  const nlohmann::json certs = cluster.Node(2).AdminJson("/certs");
  for (const auto& c : certs["certificates"])
    std::cout << "    " << c.value("identity", "") << "\n";

  const std::string ctl = NODEMESH_CTL_BIN;
  std::cout << "\ncluster-demo: running. Each node is a network namespace; "
               "run a command in one with\n";
  for (int k = 1; k <= nodes; ++k)
    std::cout << "  " << ClusterScope::NodeName(k)
              << ": nsenter --net=" << netns(k) << " COMMAND\n";
  std::cout << "Look at it (from another shell):\n"
            << "  nsenter --net=" << netns(1) << " curl -s http://"
            << cluster.Node(1).admin() << "/metrics | grep nodemesh_tunnel\n"
            << "  nsenter --net=" << netns(1) << " " << ctl
            << " --agent=http://" << cluster.Node(1).admin() << " workloads\n"
            << "  nsenter --net=" << netns(2) << " curl -s http://"
            << cluster.Node(2).admin() << "/certs\n"
            << "Call the mesh as a workload of `web` on n1:\n"
            << "  nsenter --net=" << netns(1) << " " << ctl
            << " run --admin_socket=" << cluster.Node(1).admin_socket()
            << " --mesh " << mesh << " --virtual-node web -- \\\n"
            << "      curl -s 'http://api.cluster.local:8080/[1-4]'\n"
            << "Watch the bridge (port pK leads to node K):\n"
            << "  nsenter --net=/proc/" << self << "/fd/"
            << cluster.fabric().fd() << " tcpdump -n -i p1 tcp\n"
            << "The cluster files: " << cluster.Node(1).config_dir()
            << "/cluster/{nodes,workloads}.json\n"
            << "Ctrl-C (or SIGTERM) stops it and removes everything.\n"
            << std::flush;
  while (!stop) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  std::cout << "\ncluster-demo: stopping the agents and workloads, removing "
               "cgroups, pins, namespaces and files\n"
            << std::flush;
  std::vector<std::string> made;
  for (int k = 1; k <= nodes; ++k) {
    made.push_back(cluster.Node(k).pin_dir());
    made.push_back(std::filesystem::path(cluster.Node(k).workloads_cgroup())
                       .parent_path());
    made.push_back(cluster.Node(k).config_dir());
  }
  owned.reset();
  int left = 0;
  for (const std::string& path : made) {
    if (!std::filesystem::exists(path)) continue;
    std::cerr << "cluster-demo: " << path << " remains\n";
    ++left;
  }
  if (left != 0) return 1;
  std::cout << "cluster-demo: done, nothing left behind\n";
  return 0;
}

}  // namespace
}  // namespace nodemesh::testing

int main(int argc, char** argv) {
  if (::geteuid() != 0) {
    std::cerr << "cluster-demo: run as root (the agents load BPF programs)\n";
    return 2;
  }
  struct sigaction sa {};
  sa.sa_handler = nodemesh::testing::OnSignal;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  std::string dir = argc > 1 ? argv[1] : NODEMESH_CLUSTER_EXAMPLE;
  try {
    return nodemesh::testing::Run(dir);
  } catch (const std::exception& e) {
    // The cluster's destructors have run by now: nothing is left.
    std::cerr << "cluster-demo: " << e.what() << "\n";
    return 1;
  }
}
