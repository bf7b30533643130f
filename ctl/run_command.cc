#include "ctl/run_command.h"

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>

#include "ctl/admin_client.h"
#include "nlohmann/json.hpp"

namespace nodemesh::ctl {

int RunWorkload(const RunOptions& o, const std::vector<std::string>& command) {
  if (o.mesh.empty() || o.virtual_node.empty() || command.empty()) {
    std::cerr << "nodemeshctl run --mesh M --virtual-node V [--address A] "
                 "[--netns PATH] -- CMD...\n";
    return 2;
  }
  nlohmann::json body = {{"mesh", o.mesh}, {"virtualNode", o.virtual_node}};
  if (!o.address.empty()) body["address"] = o.address;
  if (!o.netns.empty()) body["netns"] = o.netns;
  if (!o.ports.empty()) body["ports"] = o.ports;
  if (!o.attributes.empty()) body["attributes"] = o.attributes;
  auto reply = Call(o.admin_socket, "POST", "/workloads", body.dump());
  if (!reply.ok()) {
    std::cerr << "nodemeshctl run: " << reply.status().message() << "\n";
    return 1;
  }
  auto j = nlohmann::json::parse(reply->body, nullptr, false);
  if (reply->status != 201 || !j.is_object() || !j.contains("cgroup")) {
    std::cerr << "nodemeshctl run: the agent refused the workload ("
              << reply->status << "): "
              << (j.is_object() ? j.value("error", reply->body) : reply->body)
              << "\n";
    return 1;
  }
  if (j.contains("warning"))
    std::cerr << "nodemeshctl run: " << j["warning"].get<std::string>() << "\n";
  std::string cgroup = j["cgroup"].get<std::string>();
  {
    std::ofstream procs(cgroup + "/cgroup.procs");
    procs << ::getpid() << "\n";
    procs.flush();
    if (!procs) {
      std::cerr << "nodemeshctl run: cannot move into " << cgroup << ": "
                << std::strerror(errno) << "\n";
      (void)Call(o.admin_socket, "DELETE", "/workloads/" + j.value("id", ""));
      return 1;
    }
  }
  if (!o.netns.empty()) {
    int fd = ::open(o.netns.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 || ::setns(fd, CLONE_NEWNET) != 0) {
      std::cerr << "nodemeshctl run: cannot enter " << o.netns << ": "
                << std::strerror(errno) << "\n";
      return 1;
    }
    ::close(fd);
  }
  std::vector<char*> argv;
  argv.reserve(command.size() + 1);
  for (const std::string& a : command)
    argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  ::execvp(argv[0], argv.data());
  std::cerr << "nodemeshctl run: " << command[0] << ": " << std::strerror(errno)
            << "\n";
  return 127;  // the cgroup empties on exit: the registration ends
}

int PrintWorkloads(const std::string& agent) {
  auto reply = Get(agent, "/workloads");
  if (!reply.ok()) {
    std::cerr << "nodemeshctl: " << reply.status().message() << "\n";
    return 1;
  }
  auto j = nlohmann::json::parse(reply->body, nullptr, false);
  if (reply->status != 200 || !j.is_object()) {
    std::cerr << "nodemeshctl: the agent answered " << reply->status << "\n";
    return 1;
  }
  std::cout << "ID\tMESH\tVIRTUAL NODE\tADDRESS\tPORTS\tNODE\tORIGIN\tCGROUP\n";
  for (const auto& w : j["workloads"]) {
    std::string ports;
    for (const auto& p : w["ports"])
      ports += (ports.empty() ? "" : ",") + std::to_string(p.get<int>());
    std::string node = w.value("node", "");
    std::cout << w.value("id", "") << "\t" << w.value("mesh", "") << "\t"
              << w.value("virtualNode", "") << "\t" << w.value("address", "")
              << "\t" << (ports.empty() ? "-" : ports) << "\t"
              << (node.empty() ? j.value("node", "") : node) << "\t"
              << w.value("origin", "") << "\t"
              << (w.value("cgroup", "").empty() ? "-" : w.value("cgroup", ""))
              << "\n";
  }
  return 0;
}

}  // namespace nodemesh::ctl
