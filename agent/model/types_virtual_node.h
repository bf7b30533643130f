#pragma once

// The VirtualNode spec (API 2019-01-25).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/model/types_common.h"

namespace nodemesh::model {

// "LOADBALANCER" | "ENDPOINTS".
enum class DnsResponseType { kLoadBalancer, kEndpoints };
std::string_view EnumName(DnsResponseType v);

struct OutlierDetection {
  Duration base_ejection_duration;  // "baseEjectionDuration"
  Duration interval;
  int32_t max_ejection_percent = 0;  // 0..100
  int64_t max_server_errors = 0;     // >= 1
  friend bool operator==(const OutlierDetection&,
                         const OutlierDetection&) = default;
};

// Union ListenerTimeout: exactly one of grpc | http | http2 | tcp.
struct ListenerTimeout {
  std::optional<HttpTimeout> http;
  std::optional<HttpTimeout> http2;
  std::optional<GrpcTimeout> grpc;
  std::optional<TcpTimeout> tcp;
  friend bool operator==(const ListenerTimeout&,
                         const ListenerTimeout&) = default;
};

struct Listener {
  PortMapping port_mapping;
  std::optional<ConnectionPool> connection_pool;
  std::optional<HealthCheckPolicy> health_check;
  std::optional<OutlierDetection> outlier_detection;
  std::optional<ListenerTimeout> timeout;
  std::optional<ListenerTls> tls;
  friend bool operator==(const Listener&, const Listener&) = default;
};

struct VirtualServiceBackend {
  std::string virtual_service_name;  // "virtualServiceName"
  std::optional<ClientPolicy> client_policy;
  friend bool operator==(const VirtualServiceBackend&,
                         const VirtualServiceBackend&) = default;
};

// Union Backend: only virtualService.
struct Backend {
  std::optional<VirtualServiceBackend> virtual_service;
  friend bool operator==(const Backend&, const Backend&) = default;
};

struct DnsServiceDiscovery {
  std::string hostname;
  std::optional<DnsResponseType> response_type;  // default LOADBALANCER
  std::optional<IpPreference> ip_preference;     // overrides the mesh's
  friend bool operator==(const DnsServiceDiscovery&,
                         const DnsServiceDiscovery&) = default;
};

struct AwsCloudMapInstanceAttribute {
  std::string key;    // len 1..255
  std::string value;  // len 1..1024
  friend bool operator==(const AwsCloudMapInstanceAttribute&,
                         const AwsCloudMapInstanceAttribute&) = default;
};

struct AwsCloudMapServiceDiscovery {
  std::string namespace_name;  // "namespaceName", len 1..1024
  std::string service_name;    // "serviceName", len 1..1024
  std::vector<AwsCloudMapInstanceAttribute> attributes;
  std::optional<IpPreference> ip_preference;
  friend bool operator==(const AwsCloudMapServiceDiscovery&,
                         const AwsCloudMapServiceDiscovery&) = default;
};

// Union ServiceDiscovery: exactly one of dns | awsCloudMap.
struct ServiceDiscovery {
  std::optional<DnsServiceDiscovery> dns;
  std::optional<AwsCloudMapServiceDiscovery> aws_cloud_map;
  friend bool operator==(const ServiceDiscovery&,
                         const ServiceDiscovery&) = default;
};

struct VirtualNodeSpec {
  std::optional<BackendDefaults> backend_defaults;
  std::vector<Backend> backends;
  std::vector<Listener> listeners;
  std::optional<Logging> logging;
  std::optional<ServiceDiscovery> service_discovery;

  std::vector<std::string> defaulted_fields;
  friend bool operator==(const VirtualNodeSpec&,
                         const VirtualNodeSpec&) = default;
};

}  // namespace nodemesh::model
