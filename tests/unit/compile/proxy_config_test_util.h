#pragma once

// A model written as App Mesh JSON, compiled into a ProxyConfig: the
// fixture and resource builders of the proxy config tests.

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "agent/compile/proxy_config.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/unit/model/model_test_util.h"

namespace nodemesh::compile {

using model::TempConfigDir;
using nlohmann::json;

class ProxyConfigTest : public ::testing::Test {
 protected:
  std::shared_ptr<const ProxyConfig> Compile(
      const json& resources, const CompileOptions& options = {}) {
    TempConfigDir dir;
    dir.Write("model.json", resources.dump());
    auto r = model::SnapshotBuilder(dir.path()).Build(nullptr);
    EXPECT_NE(r.snapshot, nullptr);
    for (const auto& d : r.diagnostics.items()) ADD_FAILURE() << d.ToString();
    if (!r.snapshot) return nullptr;
    warnings_.clear();
    return CompileProxyConfig(*r.snapshot, options, &labels_, &warnings_);
  }
  static json Node(const std::string& name, const std::vector<int>& ports,
                   const std::string& protocol = "http") {
    json listeners = json::array();
    for (int p : ports)
      listeners.push_back(
          {{"portMapping", {{"port", p}, {"protocol", protocol}}}});
    return {
        {"meshName", "m"},
        {"virtualNodeName", name},
        {"spec",
         {{"listeners", listeners},
          {"serviceDiscovery", {{"dns", {{"hostname", name + ".local"}}}}}}}};
  }
  static json Route(const std::string& name, json spec) {
    return {{"meshName", "m"},
            {"virtualRouterName", "r"},
            {"routeName", name},
            {"spec", spec}};
  }
  static json Http(const json& match, const std::string& target = "a",
                   const json& extra = json::object()) {
    json route = {
        {"match", match},
        {"action",
         {{"weightedTargets", {{{"virtualNode", target}, {"weight", 1}}}}}}};
    route.update(extra);
    return {{"httpRoute", route}};
  }
  json Base() const {
    return json::array(
        {{{"meshName", "m"}, {"spec", json::object()}},
         Node("a", {8080}),
         {{"meshName", "m"},
          {"virtualRouterName", "r"},
          {"spec",
           {{"listeners",
             {{{"portMapping", {{"port", 80}, {"protocol", "http"}}}}}}}}},
         {{"meshName", "m"},
          {"virtualServiceName", "Svc.M.Local"},
          {"spec",
           {{"provider",
             {{"virtualRouter", {{"virtualRouterName", "r"}}}}}}}}});
  }

  LabelInterner labels_;
  std::vector<std::string> warnings_;
};

// Virtual router `name` in mesh "m" with (port, protocol) listeners.
inline json Router(const std::string& name,
                   const std::vector<std::pair<int, std::string>>& listeners) {
  json ls = json::array();
  for (const auto& [port, protocol] : listeners)
    ls.push_back({{"portMapping", {{"port", port}, {"protocol", protocol}}}});
  return {{"meshName", "m"},
          {"virtualRouterName", name},
          {"spec", {{"listeners", ls}}}};
}

// Virtual service `name` provided by router `router`.
inline json Service(const std::string& name, const std::string& router) {
  return {
      {"meshName", "m"},
      {"virtualServiceName", name},
      {"spec",
       {{"provider", {{"virtualRouter", {{"virtualRouterName", router}}}}}}}};
}

inline json RouteOn(const std::string& router, const std::string& name,
                    const json& spec) {
  return {{"meshName", "m"},
          {"virtualRouterName", router},
          {"routeName", name},
          {"spec", spec}};
}

// A route spec of `kind` ("httpRoute", "http2Route", "grpcRoute") to node
// `target`.
inline json RouteOf(const std::string& kind, const json& match,
                    const std::string& target,
                    const json& extra = json::object()) {
  json route = {
      {"match", match},
      {"action",
       {{"weightedTargets", {{{"virtualNode", target}, {"weight", 1}}}}}}};
  route.update(extra);
  return {{kind, route}};
}

}  // namespace nodemesh::compile
