#include "tests/integration/cluster_fixture.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <tuple>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"

namespace nodemesh::testing {
namespace {

using Clock = std::chrono::steady_clock;

}  // namespace

// ---------------------------------------------------------------------------
// ClusterCerts

ClusterCerts::ClusterCerts(const std::vector<std::string>& nodes)
    : dir_("/tmp/" + UniqueName("certs")) {
  std::string names;
  for (const std::string& n : nodes)
    absl::StrAppend(&names, " ", ShellQuote(n));
  ok_ = Script(absl::StrCat("mesh ", ShellQuote(dir_), names));
}

ClusterCerts::~ClusterCerts() {
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

bool ClusterCerts::Script(const std::string& args) {
  int code = -1;
  std::string out = RunCommand(
      absl::StrCat(NODEMESH_CLUSTER_CERTS, " ", args, " 2>&1"), &code);
  if (code == 0) return true;
  ADD_FAILURE() << "cluster_certs.sh " << args << " exited " << code << ":\n"
                << out;
  return false;
}

ClusterCerts::Leaf ClusterCerts::ValidLeaf(const std::string& node,
                                           const std::string& spiffe_id,
                                           const std::string& name) {
  std::string out = dir_ + "/" + name;
  Script(absl::StrCat("leaf ", ShellQuote(dir_), " ", ShellQuote(node), " ",
                      ShellQuote(spiffe_id), " ", ShellQuote(out)));
  return {out + ".pem", out + ".chain.pem", out + ".key", root()};
}

ClusterCerts::Leaf ClusterCerts::ExpiredLeaf(const std::string& node,
                                             const std::string& spiffe_id,
                                             const std::string& name) {
  std::string out = dir_ + "/" + name;
  Script(absl::StrCat("expired ", ShellQuote(dir_), " ", ShellQuote(node), " ",
                      ShellQuote(spiffe_id), " ", ShellQuote(out)));
  return {out + ".pem", out + ".chain.pem", out + ".key", root()};
}

ClusterCerts::Leaf ClusterCerts::UntrustedLeaf(const std::string& spiffe_id,
                                               const std::string& name) {
  std::string out = dir_ + "/" + name;
  Script(absl::StrCat("untrusted ", ShellQuote(dir_), " ",
                      ShellQuote(spiffe_id), " ", ShellQuote(out)));
  return {out + ".pem", out + ".chain.pem", out + ".key", out + "-root.pem"};
}

// ---------------------------------------------------------------------------
// PacketCapture

PacketCapture::PacketCapture(int fabric_netns_fd, const std::string& interface,
                             const std::string& filter)
    : path_("/tmp/" + UniqueName("capture") + ".pcap") {
  std::string log = path_ + ".log";
  pid_ = ::fork();
  if (pid_ == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::setns(fabric_netns_fd, CLONE_NEWNET) != 0) _exit(121);
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    // --immediate-mode and -U: every packet is in the file when tcpdump is
    // stopped a moment after the traffic (buffered, it may hold them all).
    // -Z root: Debian's tcpdump drops to user tcpdump otherwise. -s: veths
    // pass GSO packets of up to 64 KiB, whole. -B: in immediate mode the
    // kernel ring holds buffer/snaplen packets; libpcap's default 2 MiB
    // holds 7, and a busy machine dropped some (see dropped()); 32 MiB
    // holds 500.
    std::vector<std::string> args = {"/usr/bin/tcpdump",
                                     "-i",
                                     interface,
                                     "-n",
                                     "--immediate-mode",
                                     "-U",
                                     "-Z",
                                     "root",
                                     "-s",
                                     "65600",
                                     "-B",
                                     "32768",
                                     "-w",
                                     path_};
    for (absl::string_view word :
         absl::StrSplit(filter, ' ', absl::SkipEmpty()))
      args.emplace_back(word);
    std::vector<char*> argv;
    argv.reserve(args.size() + 1);
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    _exit(127);
  }
  auto deadline = Clock::now() + std::chrono::seconds(10);
  while (Clock::now() < deadline) {
    if (absl::StrContains(ReadFile(log), "listening on")) {
      listening_ = true;
      break;
    }
    if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
      pid_ = -1;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (!listening_)
    ADD_FAILURE() << "tcpdump -i " << interface << " " << filter
                  << " did not start:\n"
                  << ReadFile(log);
}

int PacketCapture::dropped() const {
  // tcpdump's last words: "N packets dropped by kernel" (and, on some
  // interfaces, "... dropped by interface").
  int total = 0;
  for (absl::string_view line :
       absl::StrSplit(ReadFile(path_ + ".log"), '\n')) {
    if (!absl::StrContains(line, " dropped by ")) continue;
    int n = 0;
    if (absl::SimpleAtoi(line.substr(0, line.find(' ')), &n)) total += n;
  }
  return stopped_ ? total : -1;
}

void PacketCapture::Stop() {
  if (pid_ <= 0) return;
  // Packets still in flight on the veths get a moment to be written.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  ::kill(pid_, SIGINT);
  auto deadline = Clock::now() + std::chrono::seconds(10);
  while (Clock::now() < deadline) {
    if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
      pid_ = -1;
      stopped_ = true;
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

PacketCapture::~PacketCapture() {
  Stop();
  // NMTEST_KEEP_LOGS=1 keeps the pcap for a failure to be read.
  if (::getenv("NMTEST_KEEP_LOGS") == nullptr) {
    ::unlink(path_.c_str());
    ::unlink((path_ + ".log").c_str());
  }
}

std::string PacketCapture::Bytes() const { return ReadFile(path_); }

int PacketCapture::Count(const std::string& display_filter,
                         const std::string& decode_as) const {
  std::string out = RunCommand(absl::StrCat(
      "/usr/bin/tshark -n -r ", ShellQuote(path_),
      decode_as.empty() ? "" : " -d " + ShellQuote(decode_as),
      display_filter.empty() ? "" : " -Y " + ShellQuote(display_filter),
      " -T fields -e frame.number 2>/dev/null"));
  int n = 0;
  for (absl::string_view line : absl::StrSplit(out, '\n', absl::SkipEmpty()))
    if (!line.empty()) ++n;
  return n;
}

std::string PacketCapture::Summary(const std::string& display_filter,
                                   const std::string& decode_as,
                                   int max_packets) const {
  return RunCommand(absl::StrCat(
      "/usr/bin/tshark -n -r ", ShellQuote(path_),
      decode_as.empty() ? "" : " -d " + ShellQuote(decode_as),
      display_filter.empty() ? "" : " -Y " + ShellQuote(display_filter),
      " 2>/dev/null | head -n ", max_packets));
}

// ---------------------------------------------------------------------------
// ClusterScope

std::string ClusterScope::Workload::address() const {
  return absl::StrCat("198.18.", node, ".", host);
}

std::string ClusterScope::Workload::upstream_name() const {
  return name.empty() ? absl::StrCat(virtual_node, "@n", node) : name;
}

ClusterScope::ClusterScope(int nodes, Options options)
    : options_(std::move(options)) {
  for (int k = 1; k <= nodes; ++k)
    nodes_.push_back(std::make_unique<ProxyNode>());
}

ClusterScope::~ClusterScope() {
  // Workloads first (their registrations end with them), then each agent
  // with its --cleanup (ProxyNode detaches and unpins everything and
  // removes its cgroups), then the files. The namespaces go last: the
  // veths die with the node namespaces, the bridge with the fabric's.
  servers_.clear();
  while (!nodes_.empty()) nodes_.pop_back();
  // etcd outlives the agents: their --cleanup may still talk to it.
  etcd_.reset();
  certs_.reset();
}

void ClusterScope::AddWorkload(Workload w) {
  if (w.node < 1 || w.node > size()) {
    ADD_FAILURE() << "AddWorkload: node " << w.node << " is not in 1.."
                  << size();
    return;
  }
  for (const Workload& o : workloads_) {
    if (o.node == w.node && o.host == w.host && o.port == w.port)
      ADD_FAILURE() << "AddWorkload: " << w.address() << ":" << w.port
                    << " is taken by " << o.virtual_node;
  }
  workloads_.push_back(std::move(w));
}

nlohmann::json ClusterScope::NodesJson() const {
  nlohmann::json nodes = nlohmann::json::array();
  for (int k = 1; k <= size(); ++k) {
    nodes.push_back({{"name", NodeName(k)},
                     {"address", NodeAddress(k)},
                     {"tunnelPort", options_.tunnel_port},
                     {"workloadCidrs", {absl::StrCat("198.18.", k, ".0/24")}}});
  }
  return nodes;
}

nlohmann::json ClusterScope::WorkloadsJson() const {
  // One entry per (node, mesh, virtual node, address), with all its ports:
  // the agent names declared workloads by node, virtual node and address.
  std::map<std::tuple<int, std::string, std::string, std::string>,
           nlohmann::json>
      entries;
  std::vector<std::tuple<int, std::string, std::string, std::string>> order;
  for (const Workload& w : workloads_) {
    auto key = std::make_tuple(w.node, w.mesh, w.virtual_node, w.address());
    auto it = entries.find(key);
    if (it == entries.end()) {
      order.push_back(key);
      entries[key] = {{"node", NodeName(w.node)},
                      {"mesh", w.mesh},
                      {"virtualNode", w.virtual_node},
                      {"address", w.address()},
                      {"ports", {w.port}},
                      {"attributes", w.attributes}};
    } else {
      it->second["ports"].push_back(w.port);
    }
  }
  nlohmann::json out = nlohmann::json::array();
  for (const auto& key : order) out.push_back(entries[key]);
  return out;
}

std::string ClusterScope::RunInFabric(const std::string& command,
                                      int* exit_code) const {
  return RunCommand(absl::StrCat("nsenter --net=", fabric_.path(), " sh -c ",
                                 ShellQuote(command)),
                    exit_code);
}

std::unique_ptr<PacketCapture> ClusterScope::Capture(
    const std::string& filter, const std::string& interface) {
  return std::make_unique<PacketCapture>(fabric_.fd(), interface, filter);
}

bool ClusterScope::Wire() {
  // Everything is created from inside the fabric or a node namespace: the
  // root namespace never sees a link, an address or a route of ours.
  // IPv6 is off on the cluster links (lo keeps ::1): no router
  // solicitations or MLD reports in the captures.
  int code = 0;
  std::string out = RunInFabric(
      "sysctl -qw net.ipv6.conf.all.disable_ipv6=1 "
      "net.ipv6.conf.default.disable_ipv6=1 && "
      "ip link add br0 type bridge && ip link set br0 up 2>&1",
      &code);
  if (code != 0) {
    ADD_FAILURE() << "the fabric's bridge: " << out;
    return false;
  }
  for (int k = 1; k <= size(); ++k) {
    ProxyNode& node = Node(k);
    std::string port = absl::StrCat("p", k);
    out = RunInFabric(
        absl::StrCat("ip link add ", port, " type veth peer name eth0 netns ",
                     node.netns().path(), " && ip link set ", port,
                     " master br0 up 2>&1"),
        &code);
    if (code != 0) {
      ADD_FAILURE() << "the link of " << NodeName(k) << ": " << out;
      return false;
    }
    std::string addresses =
        absl::StrCat("ip addr add ", NodeAddress(k), "/15 dev eth0");
    std::set<int> hosts;
    for (const Workload& w : workloads_)
      if (w.node == k && w.host != 1) hosts.insert(w.host);
    for (int h : hosts)
      absl::StrAppend(&addresses, " && ip addr add 198.18.", k, ".", h,
                      "/15 dev eth0");
    out = node.Run(
        "sh -c " + ShellQuote(absl::StrCat(
                       "sysctl -qw net.ipv6.conf.eth0.disable_ipv6=1 && ",
                       addresses, " && ip link set eth0 up 2>&1")),
        &code);
    if (code != 0) {
      ADD_FAILURE() << "the address of " << NodeName(k) << ": " << out;
      return false;
    }
  }
  return true;
}

std::vector<std::string> ClusterScope::AgentFlags(int k) const {
  std::vector<std::string> flags = {
      "--node_name=" + NodeName(k),
      absl::StrCat("--tunnel_port=", options_.tunnel_port)};
  if (options_.tls && certs_ != nullptr) {
    flags.push_back("--trust_domain=" + options_.trust_domain);
    flags.push_back("--ca_bundle=" + certs_->root());
    flags.push_back("--signing_cert=" + certs_->intermediate(NodeName(k)));
    flags.push_back("--signing_key=" + certs_->intermediate_key(NodeName(k)));
    if (!options_.cert_lifetime.empty())
      flags.push_back("--cert_lifetime=" + options_.cert_lifetime);
  }
  if (options_.etcd) {
    flags.push_back("--etcd_endpoints=" + EtcdEndpoint());
    flags.push_back("--node_address=" + NodeAddress(k));
    flags.push_back("--lease_ttl=" + options_.lease_ttl);
  }
  flags.insert(flags.end(), options_.extra_flags.begin(),
               options_.extra_flags.end());
  return flags;
}

std::string ClusterScope::EtcdEndpoint() const {
  return absl::StrCat("http://", kEtcdAddress, ":", kEtcdClientPort);
}

bool ClusterScope::StartFabric() {
  if (fabric_started_) {
    ADD_FAILURE() << "StartFabric: the fabric is up already";
    return false;
  }
  fabric_started_ = true;
  if (!Wire()) return false;
  return !options_.etcd || StartEtcd();
}

bool ClusterScope::StartEtcd() {
  // On the bridge itself: every node reaches it on its link's /15, and no
  // node namespace holds anything but its agent's and workloads' sockets.
  int code = 0;
  std::string out = RunInFabric(
      absl::StrCat("ip addr add ", kEtcdAddress, "/15 dev br0 2>&1"), &code);
  if (code != 0) {
    ADD_FAILURE() << "etcd's address on the fabric's bridge: " << out;
    return false;
  }
  EtcdServer::Options etcd;
  etcd.netns_path = fabric_.path();
  etcd.ip = kEtcdAddress;
  etcd.client_port = kEtcdClientPort;
  etcd.peer_port = kEtcdPeerPort;
  etcd.name = "fabric";
  etcd_ = std::make_unique<EtcdServer>(etcd);
  return etcd_->Start();
}

namespace {

// A name as a key segment, as the agent writes it (and <config_dir>/api/
// names files): what a segment must not hold ('/', a leading '.', anything
// but letters, digits, '-', '_' and '.') is percent-encoded.
std::string KeySegment(const std::string& name) {
  std::string out;
  for (unsigned char c : name) {
    if (std::isalnum(c) || c == '-' || c == '_' || (c == '.' && !out.empty())) {
      out += static_cast<char>(c);
    } else {
      char escaped[4];
      std::snprintf(escaped, sizeof(escaped), "%%%02X", c);
      out += escaped;
    }
  }
  return out;
}

}  // namespace

std::string ClusterScope::EtcdModelKey(const nlohmann::json& resource) {
  if (!resource.is_object()) return "";
  // A name field's value as a key segment; "" when absent, empty or not a
  // string.
  auto name = [&resource](const char* field) -> std::string {
    auto it = resource.find(field);
    if (it == resource.end() || !it->is_string()) return "";
    return KeySegment(it->get<std::string>());
  };
  const std::string mesh = name("meshName");
  if (mesh.empty()) return "";
  // Kinds by the name field that only they have at the top level; a route
  // also names its router, a gateway route its gateway.
  struct Kind {
    const char* kind;
    const char* name_field;
    const char* parent_field;
  };
  static constexpr Kind kKinds[] = {
      {"GatewayRoute", "gatewayRouteName", "virtualGatewayName"},
      {"Route", "routeName", "virtualRouterName"},
      {"VirtualGateway", "virtualGatewayName", nullptr},
      {"VirtualRouter", "virtualRouterName", nullptr},
      {"VirtualService", "virtualServiceName", nullptr},
      {"VirtualNode", "virtualNodeName", nullptr},
  };
  const std::string prefix = absl::StrCat(kEtcdPrefix, "model/", mesh, "/");
  for (const Kind& k : kKinds) {
    if (!resource.contains(k.name_field)) continue;
    const std::string n = name(k.name_field);
    if (n.empty()) return "";
    if (k.parent_field == nullptr) return absl::StrCat(prefix, k.kind, "/", n);
    const std::string parent = name(k.parent_field);
    if (parent.empty()) return "";
    return absl::StrCat(prefix, k.kind, "/", parent, "/", n);
  }
  return absl::StrCat(prefix, "Mesh/", mesh);
}

bool ClusterScope::PutModel(const nlohmann::json& resources) {
  if (etcd_ == nullptr) {
    ADD_FAILURE() << "PutModel: no etcd (Options::etcd, then StartFabric() "
                     "or Start())";
    return false;
  }
  const nlohmann::json list =
      resources.is_array() ? resources : nlohmann::json::array({resources});
  for (const nlohmann::json& r : list) {
    const std::string key = EtcdModelKey(r);
    if (key.empty()) {
      ADD_FAILURE() << "PutModel: not an App Mesh resource (create-* input "
                       "with meshName and its name fields): "
                    << r.dump();
      return false;
    }
    if (!etcd_->Put(key, r.dump())) return false;
  }
  return true;
}

bool ClusterScope::DeleteResource(const std::string& key) {
  if (etcd_ == nullptr) {
    ADD_FAILURE() << "DeleteResource: no etcd (Options::etcd, then "
                     "StartFabric() or Start())";
    return false;
  }
  return etcd_->Delete(key) == 1;
}

bool ClusterScope::Start(const nlohmann::json& model) {
  if (!fabric_started_ && !StartFabric()) return false;
  if (options_.etcd && (etcd_ == nullptr || !etcd_->running())) {
    ADD_FAILURE() << "Start: the fabric's etcd is not running";
    return false;
  }
  if (options_.tls) {
    std::vector<std::string> names;
    for (int k = 1; k <= size(); ++k) names.push_back(NodeName(k));
    certs_ = std::make_unique<ClusterCerts>(names);
    if (!certs_->ok()) return false;
  }
  // In etcd mode the model is there before any agent looks.
  if (options_.etcd && !PutModel(model)) return false;
  const std::string nodes = NodesJson().dump(2);
  const std::string workloads = WorkloadsJson().dump(2);
  for (int k = 1; k <= size(); ++k) {
    ProxyNode& node = Node(k);
    if (!options_.etcd) {
      std::filesystem::create_directories(node.config_dir() + "/cluster");
      std::ofstream(node.config_dir() + "/cluster/nodes.json") << nodes;
      std::ofstream(node.config_dir() + "/cluster/workloads.json") << workloads;
    }
    // In etcd mode no model file: a null model.
    if (!node.Start(options_.etcd ? nlohmann::json() : model, AgentFlags(k))) {
      ADD_FAILURE() << NodeName(k) << "'s agent did not start";
      return false;
    }
  }
  // Serving, each of them: /ready says 200 once the datapath is attached
  // and a model is loaded.
  for (int k = 1; k <= size(); ++k) {
    ProxyNode& node = Node(k);
    int status = 0;
    std::string body;
    auto deadline = Clock::now() + std::chrono::seconds(15);
    while (Clock::now() < deadline) {
      body = node.agent().Get(node.admin(), "/ready", &status);
      if (status == 200) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (status != 200) {
      ADD_FAILURE() << NodeName(k) << " is not ready (" << status
                    << "): " << body;
      return false;
    }
  }
  for (const Workload& w : workloads_) {
    ProxyNode& node = Node(w.node);
    std::vector<std::string> wrapper = {NODEMESH_CTL_BIN,
                                        "run",
                                        "--admin_socket=" + node.admin_socket(),
                                        "--mesh=" + w.mesh,
                                        "--virtual-node=" + w.virtual_node,
                                        "--address=" + w.address(),
                                        "--"};
    servers_.push_back(std::make_unique<Upstreams>(
        node.netns_fd(),
        std::vector<Upstreams::Spec>{{w.upstream_name(), w.port, w.address()}},
        wrapper,
        w.server == Server::kGrpc ? NODEMESH_GRPC_PEER
                                  : NODEMESH_UPSTREAM_SERVER));
    // Upstreams reports a server that did not print its ready line.
    try {
      if (servers_.back()->port(w.upstream_name()) != w.port) return false;
    } catch (const std::out_of_range&) {
      return false;
    }
  }
  return true;
}

nlohmann::json ClusterScope::UpstreamStats(const Workload& w) const {
  return Node(w.node).UpstreamStats(w.port, w.address());
}

}  // namespace nodemesh::testing
