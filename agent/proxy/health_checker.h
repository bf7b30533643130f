#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "agent/model/types_common.h"
#include "agent/net/event_loop.h"
#include "agent/net/socket.h"
#include "agent/proxy/outlier_detector.h"

namespace nodemesh::proxy {

// Active health checks of one cluster's endpoints, per the listener's
// healthCheck, on the main loop with non-blocking sockets carrying the
// agent's SO_MARK (the datapath leaves them alone). Every interval each
// endpoint gets one check: tcp passes when the connect does; http sends an
// HTTP/1.1 GET of `path` ("/" when none) and http2 the same over HTTP/2
// (prior knowledge), passing on a 200 only (Envoy's default expected
// status); grpc calls grpc.health.v1.Health/Check and passes on SERVING. A
// check that has no answer within the timeout fails.
class HealthChecker {
 public:
  HealthChecker(net::EventLoop* loop, const model::HealthCheckPolicy& policy,
                uint16_t listener_port, uint32_t mark,
                std::function<void()> on_change);
  ~HealthChecker();
  HealthChecker(const HealthChecker&) = delete;
  HealthChecker& operator=(const HealthChecker&) = delete;

  const model::HealthCheckPolicy& policy() const { return policy_; }
  // The endpoints to check now; those that left are forgotten at once.
  void SetEndpoints(const std::vector<net::SocketAddress>& endpoints);
  // Endpoints start healthy.
  bool healthy(const std::string& key) const;
  uint64_t successes() const { return successes_; }
  uint64_t failures() const { return failures_; }

 private:
  struct Probe;
  void Start(Probe* p);
  void OnEvent(Probe* p, uint32_t events);
  void Finish(Probe* p, bool success);
  void StartHttp2(Probe* p);
  bool WriteHttp2(Probe* p);
  void ReadHttp2(Probe* p);
  void Close(Probe* p);

  net::EventLoop* loop_;
  const model::HealthCheckPolicy policy_;
  const uint16_t port_;
  const uint32_t mark_;
  const std::string request_;
  std::function<void()> on_change_;
  std::map<std::string, std::unique_ptr<Probe>> probes_;
  uint64_t successes_ = 0;
  uint64_t failures_ = 0;
};

}  // namespace nodemesh::proxy
