#include "agent/workload/workload.h"

#include <arpa/inet.h>

#include "absl/strings/str_cat.h"

namespace nodemesh::workload {
namespace {

bool IsIpLiteral(const std::string& s) {
  unsigned char buf[16];
  return inet_pton(AF_INET, s.c_str(), buf) == 1 ||
         inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

// App Mesh resource names: 1..255 of letters, digits, '-', '_', '.'.
bool IsName(const std::string& s) {
  if (s.empty() || s.size() > 255) return false;
  for (char c : s) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' ||
          c == '.'))
      return false;
  }
  return true;
}

absl::StatusOr<std::string> OptString(const nlohmann::json& j,
                                      const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::string();
  if (!it->is_string())
    return absl::InvalidArgumentError(absl::StrCat(key, ": not a string"));
  return it->get<std::string>();
}

}  // namespace

absl::StatusOr<WorkloadRequest> WorkloadRequest::FromJson(
    const nlohmann::json& j) {
  if (!j.is_object())
    return absl::InvalidArgumentError("the body is not a JSON object");
  WorkloadRequest r;
  auto mesh = OptString(j, "mesh");
  auto vn = OptString(j, "virtualNode");
  auto address = OptString(j, "address");
  auto cgroup = OptString(j, "cgroup");
  auto netns = OptString(j, "netns");
  for (const auto* s : {&mesh, &vn, &address, &cgroup, &netns})
    if (!s->ok()) return s->status();
  r.mesh = *mesh;
  r.virtual_node = *vn;
  r.address = *address;
  r.cgroup = *cgroup;
  r.netns = *netns;
  if (!IsName(r.mesh))
    return absl::InvalidArgumentError("mesh: required, an App Mesh name");
  if (!IsName(r.virtual_node))
    return absl::InvalidArgumentError(
        "virtualNode: required, an App Mesh name");
  if (!r.address.empty() && !IsIpLiteral(r.address))
    return absl::InvalidArgumentError(
        absl::StrCat("address: ", r.address, " is not an IP address"));
  if (auto it = j.find("ports"); it != j.end() && !it->is_null()) {
    if (!it->is_array())
      return absl::InvalidArgumentError("ports: not an array of ports");
    for (const auto& p : *it) {
      if (!p.is_number_integer() || p.get<int64_t>() < 1 ||
          p.get<int64_t>() > 65535)
        return absl::InvalidArgumentError(
            absl::StrCat("ports: ", p.dump(), " is not a port (1..65535)"));
      r.ports.push_back(static_cast<uint16_t>(p.get<int64_t>()));
    }
  }
  if (auto it = j.find("attributes"); it != j.end() && !it->is_null()) {
    if (!it->is_object())
      return absl::InvalidArgumentError("attributes: not an object");
    for (const auto& [k, v] : it->items()) {
      if (!v.is_string())
        return absl::InvalidArgumentError(
            absl::StrCat("attributes.", k, ": not a string"));
      r.attributes[k] = v.get<std::string>();
    }
  }
  return r;
}

nlohmann::json Workload::ToJson() const {
  nlohmann::json j = {{"id", id},
                      {"mesh", mesh},
                      {"virtualNode", virtual_node},
                      {"address", address},
                      {"ports", ports},
                      {"cgroup", cgroup},
                      {"cgroupId", cgroup_id},
                      {"netns", netns},
                      {"attributes", attributes},
                      {"node", node},
                      {"origin", origin},
                      {"ownsCgroup", owns_cgroup},
                      {"populated", populated},
                      {"registeredAt", registered_at}};
  return j;
}

absl::StatusOr<Workload> Workload::FromJson(const nlohmann::json& j) {
  try {
    Workload w;
    w.id = j.at("id").get<std::string>();
    w.mesh = j.at("mesh").get<std::string>();
    w.virtual_node = j.at("virtualNode").get<std::string>();
    w.address = j.value("address", "127.0.0.1");
    w.ports = j.value("ports", std::vector<uint16_t>{});
    w.cgroup = j.value("cgroup", "");
    w.cgroup_id = j.value("cgroupId", uint64_t{0});
    w.netns = j.value("netns", "");
    w.attributes = j.value("attributes", std::map<std::string, std::string>{});
    w.node = j.value("node", "");
    w.origin = j.value("origin", "api");
    w.owns_cgroup = j.value("ownsCgroup", false);
    w.populated = j.value("populated", false);
    w.registered_at = j.value("registeredAt", int64_t{0});
    return w;
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("workload entry: ", e.what()));
  }
}

}  // namespace nodemesh::workload
