// How fast a change made through the App Mesh API reaches every node of a
// cluster (bench/README.md "propagation"): three nodes (network namespaces
// on a bridge, one agent each, a real etcd in the fabric), a model of
// --services virtual services (each with its virtual node) loaded into
// etcd, then --writes CreateVirtualService calls on node 1's API, one at a
// time. For each: the time from sending the call to the moment all three
// agents answer the new name from their mesh DNS — which they do only
// after the proxy took the new snapshot (its route tables) and the
// service map was written (the BPF maps; the bench reads the VIP's entry
// from every node's pinned nm_services map to be sure). Prints p50, p99
// and max over the writes.
//
//   sudo build/bench/propagation_bench [--services=10000] [--writes=100]

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "agent/etcd/etcd_client.h"
#include "gflags/gflags.h"
#include "nodemesh/abi.h"
#include "tests/integration/cluster_fixture.h"

DEFINE_int32(services, 10000,
             "Virtual services in the model (each with a "
             "virtual node of its own)");
DEFINE_int32(writes, 100, "API writes to time");

namespace nodemesh::testing {
namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

double Ms(Clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

// A DNS A query for `name`.
std::string Query(const std::string& name, uint16_t id) {
  std::string q;
  q += static_cast<char>(id >> 8);
  q += static_cast<char>(id & 0xff);
  q += std::string("\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00", 10);
  size_t start = 0;
  while (start < name.size()) {
    size_t dot = name.find('.', start);
    if (dot == std::string::npos) dot = name.size();
    q += static_cast<char>(dot - start);
    q += name.substr(start, dot - start);
    start = dot + 1;
  }
  q += std::string("\x00\x00\x01\x00\x01", 5);
  return q;
}

// The first A record of an answer, or "".
std::string FirstA(const char* p, size_t n) {
  if (n < 12 || (p[3] & 0x0f) != 0) return "";
  int answers = (static_cast<uint8_t>(p[6]) << 8) | static_cast<uint8_t>(p[7]);
  if (answers == 0) return "";
  size_t i = 12;
  while (i < n && p[i] != 0) i += static_cast<uint8_t>(p[i]) + 1;
  i += 5;  // end of name, type, class
  for (int a = 0; a < answers && i + 12 <= n; ++a) {
    if ((static_cast<uint8_t>(p[i]) & 0xc0) == 0xc0) {
      i += 2;
    } else {
      while (i < n && p[i] != 0) i += static_cast<uint8_t>(p[i]) + 1;
      ++i;
    }
    uint16_t type =
        (static_cast<uint8_t>(p[i]) << 8) | static_cast<uint8_t>(p[i + 1]);
    uint16_t len =
        (static_cast<uint8_t>(p[i + 8]) << 8) | static_cast<uint8_t>(p[i + 9]);
    i += 10;
    if (type == 1 && len == 4 && i + 4 <= n) {
      char text[INET_ADDRSTRLEN];
      inet_ntop(AF_INET, p + i, text, sizeof(text));
      return text;
    }
    i += len;
  }
  return "";
}

// A UDP socket in node k's namespace, connected to its mesh DNS.
int DnsSocket(const ProxyNode& node) {
  NetnsScope::Enter in(node.netns());
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(15053);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  return fd;
}

// Asks until the name resolves; its VIP.
std::string Resolve(int fd, const std::string& name, Clock::time_point limit) {
  static uint16_t id = 1;
  while (Clock::now() < limit) {
    std::string q = Query(name, ++id);
    ::send(fd, q.data(), q.size(), 0);
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 5) == 1) {
      char buf[512];
      ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
      if (n > 0) {
        std::string vip = FirstA(buf, static_cast<size_t>(n));
        if (!vip.empty()) return vip;
      }
    }
    // Every 2 ms: the agent answers (or forwards) each query on its main
    // thread, which must not be kept from the work being measured.
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return "";
}

// Whether node's pinned nm_services map holds vip:port (TCP).
bool InServiceMap(const ProxyNode& node, const std::string& vip,
                  uint16_t port) {
  int fd = bpf_obj_get((node.pin_dir() + "/nm_services").c_str());
  if (fd < 0) return false;
  nm_service_key key{};
  key.addr[10] = key.addr[11] = 0xff;
  inet_pton(AF_INET, vip.c_str(), key.addr + 12);
  key.port = htons(port);
  key.protocol = IPPROTO_TCP;
  nm_service value{};
  bool found = bpf_map_lookup_elem(fd, &key, &value) == 0;
  ::close(fd);
  return found;
}

// One HTTP/1.1 request on a fresh connection made in node's namespace;
// the status code.
int Http(const ProxyNode& node, const std::string& method,
         const std::string& path, const std::string& body) {
  int fd;
  {
    NetnsScope::Enter in(node.netns());
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  }
  auto addr = net::SocketAddress::Parse(node.admin());
  if (::connect(fd, addr->addr(), addr->addr_len()) != 0) {
    ::close(fd);
    return 0;
  }
  std::string req = absl::StrCat(method, " ", path, " HTTP/1.1\r\nHost: x\r\n",
                                 "Content-Type: application/json\r\n",
                                 "Content-Length: ", body.size(),
                                 "\r\nConnection: close\r\n\r\n", body);
  ::send(fd, req.data(), req.size(), MSG_NOSIGNAL);
  std::string answer;
  char buf[4096];
  for (ssize_t n; (n = ::recv(fd, buf, sizeof(buf), 0)) > 0;)
    answer.append(buf, static_cast<size_t>(n));
  ::close(fd);
  int status = 0;
  if (answer.size() > 12 && !absl::SimpleAtoi(answer.substr(9, 3), &status))
    status = 0;
  if (status != 200) std::cerr << answer.substr(0, 300) << "\n";
  return status;
}

json Node(const std::string& name) {
  return {{"meshName", "m"},
          {"virtualNodeName", name},
          {"spec",
           {{"listeners",
             {{{"portMapping", {{"port", 9000}, {"protocol", "http"}}}}}}}}};
}
json Service(const std::string& name, const std::string& node) {
  return {
      {"meshName", "m"},
      {"virtualServiceName", name},
      {"spec", {{"provider", {{"virtualNode", {{"virtualNodeName", node}}}}}}}};
}

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p * (v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

int Main() {
  ClusterScope::Options options;
  options.etcd = true;
  options.lease_ttl = "10";
  options.tls = false;
  ClusterScope cluster(3, options);
  if (!cluster.Start(json::array(
          {{{"meshName", "m"}, {"spec", json::object()}}, Node("back")})))
    return 1;

  // The bulk of the model, straight into etcd from the fabric (100 keys per
  // transaction), as a cluster that grew to this size would hold it.
  std::cout << "loading " << FLAGS_services << " services into etcd...\n";
  auto load_started = Clock::now();
  {
    NetnsScope::Enter in(cluster.fabric());
    etcd::Client::Options o;
    o.endpoints.push_back(*net::SocketAddress::Parse(absl::StrCat(
        ClusterScope::kEtcdAddress, ":", ClusterScope::kEtcdClientPort)));
    o.timeout = std::chrono::seconds(10);
    etcd::Client client(o);
    std::vector<etcd::Write> batch;
    auto flush = [&] {
      if (batch.empty()) return true;
      auto r = client.Txn({}, batch);
      batch.clear();
      if (!r.ok()) std::cerr << r.status() << "\n";
      return r.ok();
    };
    for (int i = 0; i < FLAGS_services; ++i) {
      std::string vn = absl::StrCat("svc-", i);
      batch.push_back(
          {ClusterScope::EtcdModelKey(Node(vn)), Node(vn).dump(), 0});
      json vs = Service(vn + ".m.local", vn);
      batch.push_back({ClusterScope::EtcdModelKey(vs), vs.dump(), 0});
      if (batch.size() >= 100 && !flush()) return 1;
    }
    if (!flush()) return 1;
  }
  std::vector<int> dns;
  for (int k = 1; k <= 3; ++k) dns.push_back(DnsSocket(cluster.Node(k)));
  std::string last = absl::StrCat("svc-", FLAGS_services - 1, ".m.local");
  for (int k = 0; k < 3; ++k) {
    if (Resolve(dns[k], last, Clock::now() + std::chrono::minutes(5)).empty()) {
      std::cerr << "node " << k + 1 << " never saw the model\n";
      return 1;
    }
  }
  std::cout << "model loaded and served by all three agents in "
            << Ms(Clock::now() - load_started) / 1000 << " s: "
            << cluster.Node(1)
                   .AdminJson("/ready")["components"]["config_source"]
                   .value("resources", 0)
            << " resources\n";

  std::vector<double> total, api, per_node[3];
  int missing_maps = 0;
  for (int w = 0; w < FLAGS_writes; ++w) {
    std::string name = absl::StrCat("new-", w, ".m.local");
    json body = Service(name, "back");
    body.erase("meshName");
    auto sent = Clock::now();
    int status = Http(cluster.Node(1), "PUT",
                      "/v20190125/meshes/m/virtualServices", body.dump());
    auto answered = Clock::now();
    if (status != 200) {
      std::cerr << "write " << w << ": HTTP " << status << "\n";
      return 1;
    }
    std::vector<std::string> vips(3);
    std::vector<std::thread> pollers;
    Clock::time_point seen[3];
    for (int k = 0; k < 3; ++k)
      pollers.emplace_back([&, k] {
        vips[k] = Resolve(dns[k], name, sent + std::chrono::seconds(10));
        seen[k] = Clock::now();
      });
    for (auto& t : pollers) t.join();
    double worst = 0;
    for (int k = 0; k < 3; ++k) {
      if (vips[k].empty()) {
        std::cerr << "write " << w << ": node " << k + 1 << " never saw it\n";
        return 1;
      }
      if (!InServiceMap(cluster.Node(k + 1), vips[k], 9000)) ++missing_maps;
      per_node[k].push_back(Ms(seen[k] - sent));
      worst = std::max(worst, Ms(seen[k] - sent));
    }
    total.push_back(worst);
    api.push_back(Ms(answered - sent));
  }
  std::printf(
      "\n%d writes (CreateVirtualService on node 1), %d services in the "
      "model:\n",
      FLAGS_writes, FLAGS_services);
  std::printf("  %-44s %8s %8s %8s\n", "", "p50 ms", "p99 ms", "max ms");
  auto row = [](const char* what, const std::vector<double>& v) {
    std::printf("  %-44s %8.1f %8.1f %8.1f\n", what, Percentile(v, 0.5),
                Percentile(v, 0.99), *std::max_element(v.begin(), v.end()));
  };
  row("API call (validate + etcd compare-and-swap)", api);
  for (int k = 0; k < 3; ++k)
    row(absl::StrCat("write -> node ", k + 1, " serving it").c_str(),
        per_node[k]);
  row("write -> all three nodes serving it", total);
  std::printf(
      "  goal: p99 under 200 ms (%s); BPF entries missing at "
      "detection: %d\n",
      Percentile(total, 0.99) < 200 ? "met" : "NOT met", missing_maps);
  for (int fd : dns) ::close(fd);
  return 0;
}

}  // namespace
}  // namespace nodemesh::testing

int main(int argc, char** argv) {
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  return nodemesh::testing::Main();
}
