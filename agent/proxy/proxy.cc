#include "agent/proxy/proxy.h"

#include "absl/strings/str_cat.h"
#include "agent/compile/service_map.h"
#include "agent/datapath/kernel_fs.h"
#include "agent/net/netns.h"
#include "glog/logging.h"

namespace nodemesh::proxy {

namespace {
// How often ejections are checked for expiry and intervals ended.
constexpr std::chrono::milliseconds kHealthTick(100);
}  // namespace

Proxy::Proxy(net::EventLoop* main_loop, ProxyOptions options)
    : main_loop_(main_loop), options_(std::move(options)) {
  resolver_ =
      std::make_unique<EndpointResolver>(main_loop_, [this] { Republish(); });
  std::weak_ptr<Proxy*> weak = self_;
  net::EventLoop* loop = main_loop_;
  options_.worker.report_outcomes = [loop, weak](OutcomeReport r) {
    loop->Post([weak, r = std::move(r)] {
      if (auto self = weak.lock()) (*self)->OnOutcomes(r);
    });
  };
  health_timer_ =
      main_loop_->AddTimer(kHealthTick, [this] { OnHealthTimer(); });
}

Proxy::~Proxy() {
  Stop();
  main_loop_->CancelTimer(health_timer_);
  health_.clear();
}

absl::Status Proxy::Start(const model::Snapshot& first) {
  Update(first);
  WorkerOptions worker_options = options_.worker;
  worker_options.workers = options_.workers;
  for (int i = 0; i < options_.workers; ++i) {
    auto w = std::make_unique<Worker>(i, worker_options);
    if (auto s = w->Start(published_); !s.ok()) return s;
    workers_.push_back(std::move(w));
  }
  LOG(INFO) << "proxy: " << options_.workers << " workers, outbound on port "
            << options_.worker.outbound_port;
  return absl::OkStatus();
}

void Proxy::Update(const model::Snapshot& snapshot) {
  warnings_.clear();
  config_ = compile::CompileProxyConfig(snapshot, options_.compile, &labels_,
                                        &warnings_);
  for (const std::string& w : warnings_) LOG(WARNING) << "proxy config: " << w;
  queries_.clear();
  std::vector<DnsQuery> wanted;
  for (const compile::Cluster& c : config_->clusters) {
    DnsQuery q;
    q.hostname = c.dns_hostname;
    q.port = c.port;
    q.all_addresses = c.dns_all_addresses;
    q.ip_preference = c.ip_preference;
    queries_.push_back(q);
    if (!q.hostname.empty()) wanted.push_back(q);
  }
  resolver_->SetQueries(wanted);
  Republish();
}

void Proxy::Republish() {
  if (config_ == nullptr) return;
  auto snap = std::make_shared<ProxySnapshot>();
  snap->config = config_;
  snap->tunnel = tunnel_;
  snap->endpoints.reserve(queries_.size());
  for (const DnsQuery& q : queries_) {
    snap->endpoints.push_back(q.hostname.empty() ? nullptr
                                                 : resolver_->Lookup(q));
  }
  auto intern = [this](const std::string& name) {
    return &*source_names_.insert(name).first;
  };
  snap->unknown_source = intern("unknown");
  if (registry_ != nullptr) {
    auto cloud_map_of = compile::CloudMapIndex(*config_);
    for (size_t i = 0; i < config_->clusters.size(); ++i) {
      // Registered workloads win; DNS serves only nodes with none.
      auto eps = compile::ClusterEndpoints(
          config_->clusters[i], registry_->workloads(), cloud_map_of);
      if (eps.empty()) continue;
      auto list = std::make_shared<std::vector<net::SocketAddress>>();
      for (const auto& ep : eps) list->push_back(ep.address);
      snap->endpoints[i] = std::move(list);
    }
    for (const auto& [id, name] : registry_->virtual_node_names()) {
      snap->sources[id] = intern(name.second);
      snap->source_keys[id] =
          intern(absl::StrCat(name.first, "/", name.second));
    }
  }
  for (const compile::GatewayListener& g : config_->gateways)
    snap->gateway_sources.push_back(intern(g.virtual_gateway));
  SyncHealth(snap.get());
  published_ = std::move(snap);
  for (auto& w : workers_) w->Publish(published_);
}

void Proxy::SyncHealth(ProxySnapshot* snap) {
  const auto now = OutlierDetector::Clock::now();
  std::set<std::string> present;
  snap->excluded.resize(config_->clusters.size());
  for (size_t i = 0; i < config_->clusters.size(); ++i) {
    const compile::Cluster& c = config_->clusters[i];
    present.insert(c.name);
    const bool wanted = c.outlier_detection || c.health_check;
    auto found = health_.find(c.name);
    if (!wanted && found == health_.end()) continue;
    ClusterHealth& h = health_[c.name];
    static const std::vector<net::SocketAddress> kNone;
    const std::vector<net::SocketAddress>& eps =
        snap->endpoints[i] ? *snap->endpoints[i] : kNone;
    std::vector<std::string> keys;
    keys.reserve(eps.size());
    for (const auto& a : eps) keys.push_back(a.ToString());
    if (c.outlier_detection) {
      OutlierPolicy policy = OutlierPolicy::From(*c.outlier_detection);
      if (h.outlier == nullptr)
        h.outlier = std::make_unique<OutlierDetector>(policy, now);
      else
        h.outlier->SetPolicy(policy);
      h.outlier->SetEndpoints(keys);
    } else if (h.outlier != nullptr) {
      h.ejections_total += h.outlier->ejections_total();
      h.outlier.reset();
    }
    if (h.checker != nullptr &&
        (!c.health_check || !(*c.health_check == h.checker->policy()))) {
      h.checks_ok += h.checker->successes();
      h.checks_failed += h.checker->failures();
      h.checker.reset();
    }
    if (c.health_check && h.checker == nullptr) {
      h.checker = std::make_unique<HealthChecker>(
          main_loop_, *c.health_check, c.port, options_.worker.socket_mark,
          [this] { RepublishSoon(); });
    }
    if (h.checker != nullptr) {
      // The node that runs an endpoint checks it (App Mesh's checks ran in
      // the endpoint's own Envoy); a remote one is never dialled here.
      if (tunnel_ != nullptr && !tunnel_->remote.empty()) {
        std::vector<net::SocketAddress> local;
        for (const auto& a : eps)
          if (!tunnel_->remote.contains(a.ToString())) local.push_back(a);
        h.checker->SetEndpoints(local);
      } else {
        h.checker->SetEndpoints(eps);
      }
    }
    std::shared_ptr<std::vector<uint8_t>> mask;
    for (size_t j = 0; j < keys.size(); ++j) {
      if (HealthOf(c.name, keys[j]) == EndpointHealth::kHealthy) continue;
      if (mask == nullptr)
        mask = std::make_shared<std::vector<uint8_t>>(keys.size(), 0);
      (*mask)[j] = 1;
    }
    snap->excluded[i] = std::move(mask);
  }
  for (auto it = health_.begin(); it != health_.end();) {
    if (present.count(it->first)) {
      ++it;
    } else {
      it = health_.erase(it);  // the listener is gone
    }
  }
}

Proxy::EndpointHealth Proxy::HealthOf(const std::string& cluster,
                                      const std::string& endpoint) const {
  auto it = health_.find(cluster);
  if (it == health_.end()) return EndpointHealth::kHealthy;
  const ClusterHealth& h = it->second;
  if (h.outlier != nullptr && h.outlier->ejected(endpoint))
    return EndpointHealth::kEjected;
  if (h.checker != nullptr && !h.checker->healthy(endpoint))
    return EndpointHealth::kUnhealthy;
  return EndpointHealth::kHealthy;
}

void Proxy::OnOutcomes(const OutcomeReport& report) {
  if (report.config != config_) return;  // indexes of an older config
  const auto now = OutlierDetector::Clock::now();
  bool changed = false;
  for (const EndpointOutcome& o : report.outcomes) {
    if (o.cluster >= config_->clusters.size()) continue;
    const compile::Cluster& c = config_->clusters[o.cluster];
    auto it = health_.find(c.name);
    if (it == health_.end() || it->second.outlier == nullptr) continue;
    std::string key = o.address.ToString();
    if (it->second.outlier->Report(key, o.errors, o.successes, now)) {
      LOG(INFO) << "outlier detection: ejected " << key << " of " << c.name
                << " for "
                << (it->second.outlier->policy().base_ejection *
                    it->second.outlier->ejection_count(key))
                       .count()
                << " ms";
      changed = true;
    }
  }
  if (changed) Republish();
}

void Proxy::OnHealthTimer() {
  const auto now = OutlierDetector::Clock::now();
  bool changed = false;
  for (auto& [name, h] : health_) {
    if (h.outlier != nullptr && h.outlier->Advance(now)) {
      LOG(INFO) << "outlier detection: endpoints of " << name
                << " back in rotation";
      changed = true;
    }
  }
  if (changed) Republish();
  health_timer_ =
      main_loop_->AddTimer(kHealthTick, [this] { OnHealthTimer(); });
}

void Proxy::RepublishSoon() {
  if (republish_pending_) return;
  republish_pending_ = true;
  std::weak_ptr<Proxy*> weak = self_;
  main_loop_->Post([weak] {
    if (auto self = weak.lock()) {
      (*self)->republish_pending_ = false;
      (*self)->Republish();
    }
  });
}

void Proxy::SetPodNamespaces(const std::set<std::string>& paths) {
  for (auto it = pod_netns_.begin(); it != pod_netns_.end();) {
    if (paths.count(*it)) {
      ++it;
      continue;
    }
    for (auto& w : workers_) w->ClosePodListeners(*it);
    LOG(INFO) << "proxy: closed the outbound listeners in " << *it;
    it = pod_netns_.erase(it);
  }
  for (const std::string& path : paths) {
    if (pod_netns_.count(path)) continue;
    std::vector<net::UniqueFd> fds;
    absl::Status s = net::RunInNetns(path, [&]() -> absl::Status {
      // Queued connections move to a surviving listener on restart, in
      // this namespace too.
      (void)datapath::WriteSysctl("net/ipv4/tcp_migrate_req", "1");
      auto addr = net::SocketAddress::Parse(
          absl::StrCat("127.0.0.1:", options_.worker.outbound_port));
      for (size_t i = 0; i < workers_.size(); ++i) {
        auto fd =
            net::ListenTcp(*addr, options_.worker.backlog,
                           /*reuse_port=*/true, options_.worker.socket_mark);
        if (!fd.ok()) return fd.status();
        fds.push_back(std::move(*fd));
      }
      return absl::OkStatus();
    });
    if (!s.ok()) {
      LOG(ERROR) << "proxy: no outbound listener in " << path << ": " << s;
      continue;  // tried again on the next registry change
    }
    for (size_t i = 0; i < workers_.size(); ++i)
      workers_[i]->AdoptPodListener(std::move(fds[i]), path);
    pod_netns_.insert(path);
    LOG(INFO) << "proxy: outbound listeners in " << path;
  }
}

void Proxy::Drain() {
  for (auto& w : workers_) w->Drain();
}

void Proxy::Stop() {
  for (auto& w : workers_) w->Stop();
  workers_.clear();
}

size_t Proxy::open_connections() const {
  size_t n = 0;
  for (const auto& w : workers_) n += w->open_connections();
  return n;
}

WorkerStats Proxy::CollectStats() const {
  WorkerStats total;
  for (const auto& w : workers_) total.Merge(w->CollectStats());
  return total;
}

namespace {

constexpr std::string_view kMetricPrefix = "nodemesh_";

// The proxy's single-valued counters and gauges: one table for /metrics
// (the name) and /stats (the name without the prefix).
struct ScalarStat {
  std::string_view name;
  bool gauge;
  std::string_view help;
  uint64_t WorkerStats::*value;
};

constexpr ScalarStat kScalarStats[] = {
    {"nodemesh_downstream_connections_total", false,
     "Connections accepted by the proxy", &WorkerStats::downstream_cx_total},
    {"nodemesh_downstream_connections_active", true,
     "Client connections open now", &WorkerStats::downstream_cx_active},
    {"nodemesh_downstream_requests_total", false,
     "HTTP requests received (every outcome)",
     &WorkerStats::downstream_rq_total},
    {"nodemesh_upstream_connections_total", false,
     "Connections opened to endpoints", &WorkerStats::upstream_cx_total},
    {"nodemesh_upstream_connections_active", true,
     "Endpoint connections open now (busy and pooled)",
     &WorkerStats::upstream_cx_active},
    {"nodemesh_upstream_connect_failures_total", false,
     "Connects to endpoints that failed",
     &WorkerStats::upstream_cx_connect_fail},
    {"nodemesh_upstream_requests_total", false,
     "Requests sent to endpoints, retries included",
     &WorkerStats::upstream_rq_total},
    {"nodemesh_retries_total", false, "Retries of requests and TCP connects",
     &WorkerStats::retries},
    {"nodemesh_timeouts_total", false,
     "Requests and connections ended by a timeout", &WorkerStats::timeouts},
    {"nodemesh_tcp_connections_total", false, "tcpRoute connections",
     &WorkerStats::tcp_cx_total},
    {"nodemesh_tunnels_total", false, "HTTP Upgrade and CONNECT tunnels",
     &WorkerStats::tunnels_total},
    {"nodemesh_downstream_http2_connections_total", false,
     "Client connections that spoke HTTP/2",
     &WorkerStats::downstream_h2_cx_total},
    {"nodemesh_downstream_http2_protocol_errors_total", false,
     "HTTP/2 client connections or streams ended for a protocol error",
     &WorkerStats::downstream_h2_protocol_errors},
    {"nodemesh_upstream_http2_connections_total", false,
     "HTTP/2 connections opened to endpoints",
     &WorkerStats::upstream_h2_cx_total},
    {"nodemesh_upstream_http2_goaways_total", false,
     "GOAWAY frames endpoints sent (their connections drain)",
     &WorkerStats::upstream_h2_goaways},
    {"nodemesh_gateway_tls_handshakes_total", false,
     "TLS clients a VirtualGateway listener served",
     &WorkerStats::gateway_tls_handshakes},
    {"nodemesh_gateway_tls_plaintext_total", false,
     "Plaintext clients a PERMISSIVE VirtualGateway listener served",
     &WorkerStats::gateway_tls_plaintext},
    {"nodemesh_gateway_tls_failures_total", false,
     "VirtualGateway TLS handshakes or client validations that failed",
     &WorkerStats::gateway_tls_failures},
    {"nodemesh_gateway_tls_refused_total", false,
     "Plaintext clients a STRICT VirtualGateway listener refused",
     &WorkerStats::gateway_tls_refused},
    {"nodemesh_listener_errors_total", false,
     "VirtualGateway listeners that could not bind (per worker; the log "
     "names the port)",
     &WorkerStats::listener_errors},
    {"nodemesh_downstream_bytes_received_total", false,
     "Bytes read from clients", &WorkerStats::bytes_received},
    {"nodemesh_downstream_bytes_sent_total", false, "Bytes written to clients",
     &WorkerStats::bytes_sent},
    {"nodemesh_access_log_lines_total", false,
     "Access log lines written (a request logged to two paths is two)",
     &WorkerStats::access_log_lines},
    {"nodemesh_access_log_write_errors_total", false,
     "Access log writes that failed; their lines are dropped",
     &WorkerStats::access_log_write_errors},
    {"nodemesh_access_log_open_errors_total", false,
     "Access log files that could not be opened (per worker and attempt; "
     "the log names the path)",
     &WorkerStats::access_log_open_errors},
};

void RenderTunnelMetrics(const TunnelCounters& t, stats::PrometheusText* out) {
  out->Family("nodemesh_tunnel_connections_total", "counter",
              "Mutual-TLS tunnel connections between nodes, opened to other "
              "nodes (out) and accepted from them (in), handshake done");
  out->Sample("nodemesh_tunnel_connections_total", {{"direction", "out"}},
              t.connections_out);
  out->Sample("nodemesh_tunnel_connections_total", {{"direction", "in"}},
              t.connections_in);
  out->Family("nodemesh_tunnel_streams_total", "counter",
              "CONNECT streams through the tunnel: opened for local callers "
              "(out), delivered to local endpoints (in)");
  out->Sample("nodemesh_tunnel_streams_total", {{"direction", "out"}},
              t.streams_out);
  out->Sample("nodemesh_tunnel_streams_total", {{"direction", "in"}},
              t.streams_in);
  out->Family("nodemesh_tunnel_bytes_total", "counter",
              "TLS payload bytes through the tunnel (HTTP/2 frames)");
  out->Sample("nodemesh_tunnel_bytes_total", {{"direction", "out"}},
              t.bytes_out);
  out->Sample("nodemesh_tunnel_bytes_total", {{"direction", "in"}}, t.bytes_in);
  out->Family("nodemesh_tunnel_refused_total", "counter",
              "Tunnel handshakes and streams refused, by reason (the log "
              "names both identities)");
  for (size_t i = 0; i < t.refused.size(); ++i)
    out->Sample(
        "nodemesh_tunnel_refused_total",
        {{"reason",
          std::string(TunnelRefusalName(static_cast<TunnelRefusal>(i)))}},
        t.refused[i]);
}

nlohmann::json TunnelStatsJson(const TunnelCounters& t) {
  nlohmann::json refused = nlohmann::json::object();
  for (size_t i = 0; i < t.refused.size(); ++i)
    refused[std::string(TunnelRefusalName(static_cast<TunnelRefusal>(i)))] =
        t.refused[i];
  return {{"connections_out", t.connections_out},
          {"connections_in", t.connections_in},
          {"streams_out", t.streams_out},
          {"streams_in", t.streams_in},
          {"bytes_out", t.bytes_out},
          {"bytes_in", t.bytes_in},
          {"refused", refused}};
}

stats::Labels RouteLabelSet(const WorkerStats::TargetKey& key) {
  const compile::RouteLabels& l = *key.second;
  return {{"mesh", l.mesh},
          {"source_virtual_node", key.first ? *key.first : std::string()},
          {"virtual_service", l.virtual_service},
          {"route", l.route},
          {"target_virtual_node", l.target_virtual_node}};
}

}  // namespace

void Proxy::RenderMetrics(stats::PrometheusText* out) const {
  WorkerStats s = CollectStats();
  for (const ScalarStat& stat : kScalarStats) {
    out->Family(stat.name, stat.gauge ? "gauge" : "counter", stat.help);
    out->Sample(stat.name, {}, s.*stat.value);
  }
  out->Family("nodemesh_local_replies_total", "counter",
              "Responses the proxy made itself, by reason (the "
              "x-nodemesh-reason header)");
  for (size_t i = 0; i < s.local_replies.size(); ++i) {
    out->Sample(
        "nodemesh_local_replies_total",
        {{"reason", std::string(ReasonToken(static_cast<LocalReason>(i)))}},
        s.local_replies[i]);
  }
  RenderTunnelMetrics(s.tunnel, out);
  out->Family("nodemesh_requests_total", "counter",
              "HTTP requests by route target and response code");
  for (const auto& [key, n] : s.requests) {
    stats::Labels labels = RouteLabelSet(key.first);
    labels.emplace_back("code", std::to_string(key.second));
    out->Sample("nodemesh_requests_total", labels, n);
  }
  out->Family("nodemesh_request_duration_seconds", "histogram",
              "Time from request head to response end, by route target");
  for (const auto& [key, t] : s.targets) {
    const DurationHistogram& h = t.duration;
    stats::Labels base = RouteLabelSet(key);
    uint64_t cumulative = 0;
    for (size_t i = 0; i < h.counts.size(); ++i) {
      cumulative += h.counts[i];
      stats::Labels l = base;
      l.emplace_back("le", i < kDurationBuckets.size()
                               ? absl::StrCat(kDurationBuckets[i])
                               : std::string("+Inf"));
      out->Sample("nodemesh_request_duration_seconds_bucket", l, cumulative);
    }
    out->Sample("nodemesh_request_duration_seconds_sum", base, h.sum);
    out->Sample("nodemesh_request_duration_seconds_count", base, h.count);
  }
  // Per-target counters; the unlabelled totals above count the same events
  // for the whole proxy (TCP included).
  struct TargetFamily {
    const char* name;
    const char* help;
    uint64_t TargetCounters::*value;
  };
  static constexpr TargetFamily kTargetFamilies[] = {
      {"nodemesh_request_retries_total", "Retries, by route target",
       &TargetCounters::retries},
      {"nodemesh_request_timeouts_total",
       "Requests that hit a timeout (per request, per try, idle), by route "
       "target",
       &TargetCounters::timeouts},
      {"nodemesh_request_bytes_total",
       "Request body bytes forwarded, by route target",
       &TargetCounters::request_bytes},
      {"nodemesh_response_bytes_total",
       "Response body bytes returned, by route target",
       &TargetCounters::response_bytes},
  };
  for (const TargetFamily& f : kTargetFamilies) {
    out->Family(f.name, "counter", f.help);
    for (const auto& [key, t] : s.targets)
      out->Sample(f.name, RouteLabelSet(key), t.*f.value);
  }
  // Endpoints per cluster, as service discovery and the registry give
  // them, by what outlier detection and health checks say (an endpoint
  // both ejected and unhealthy counts as ejected).
  out->Family("nodemesh_upstream_endpoints", "gauge",
              "Endpoints of each virtual node listener, by health");
  if (published_ != nullptr) {
    const auto& clusters = published_->config->clusters;
    for (size_t i = 0; i < clusters.size(); ++i) {
      const auto& eps = published_->endpoints[i];
      uint64_t counts[3] = {0, 0, 0};
      if (eps) {
        for (const auto& a : *eps)
          ++counts[static_cast<int>(HealthOf(clusters[i].name, a.ToString()))];
      }
      static constexpr const char* kHealth[] = {"healthy", "ejected",
                                                "unhealthy"};
      for (int h = 0; h < 3; ++h) {
        out->Sample("nodemesh_upstream_endpoints",
                    {{"mesh", clusters[i].mesh},
                     {"virtual_node", clusters[i].virtual_node},
                     {"port", std::to_string(clusters[i].port)},
                     {"health", kHealth[h]}},
                    counts[h]);
      }
    }
  }
  out->Family("nodemesh_outlier_ejections_total", "counter",
              "Endpoints ejected by outlier detection");
  out->Family("nodemesh_health_checks_total", "counter",
              "Active health checks, by result");
  if (published_ != nullptr) {
    for (const compile::Cluster& c : published_->config->clusters) {
      auto it = health_.find(c.name);
      if (it == health_.end()) continue;
      const ClusterHealth& h = it->second;
      stats::Labels labels = {{"mesh", c.mesh},
                              {"virtual_node", c.virtual_node},
                              {"port", std::to_string(c.port)}};
      if (c.outlier_detection) {
        out->Sample(
            "nodemesh_outlier_ejections_total", labels,
            h.ejections_total + (h.outlier ? h.outlier->ejections_total() : 0));
      }
      if (c.health_check) {
        uint64_t ok = h.checks_ok + (h.checker ? h.checker->successes() : 0);
        uint64_t failed =
            h.checks_failed + (h.checker ? h.checker->failures() : 0);
        stats::Labels l = labels;
        l.emplace_back("result", "success");
        out->Sample("nodemesh_health_checks_total", l, ok);
        l.back().second = "failure";
        out->Sample("nodemesh_health_checks_total", l, failed);
      }
    }
  }
  // Connection pools (connectionPool), by cluster.
  out->Family("nodemesh_upstream_overflow_total", "counter",
              "Requests and tcpRoute connections over a listener's "
              "connectionPool, by kind (connections, pending, requests)");
  for (const auto& [name, p] : s.pools) {
    const std::string port = std::to_string(p.port);
    const std::pair<const char*, uint64_t> kinds[] = {
        {"connections", p.overflow_connections},
        {"pending", p.overflow_pending},
        {"requests", p.overflow_requests}};
    for (const auto& [kind, n] : kinds) {
      out->Sample("nodemesh_upstream_overflow_total",
                  {{"mesh", p.mesh},
                   {"virtual_node", p.virtual_node},
                   {"port", port},
                   {"kind", kind}},
                  n);
    }
  }
  out->Family("nodemesh_upstream_pending_requests", "gauge",
              "Requests waiting for a connection (http "
              "connectionPool.maxConnections reached)");
  for (const auto& [name, p] : s.pools) {
    out->Sample("nodemesh_upstream_pending_requests",
                {{"mesh", p.mesh},
                 {"virtual_node", p.virtual_node},
                 {"port", std::to_string(p.port)}},
                p.pending);
  }
  out->Family("nodemesh_dns_resolution_failures_total", "counter",
              "dns service discovery lookups that failed");
  out->Sample("nodemesh_dns_resolution_failures_total", {},
              resolver_->failures());
}

nlohmann::json Proxy::StatsJson() const {
  WorkerStats s = CollectStats();
  nlohmann::json local = nlohmann::json::object();
  for (size_t i = 0; i < s.local_replies.size(); ++i)
    local[std::string(ReasonToken(static_cast<LocalReason>(i)))] =
        s.local_replies[i];
  nlohmann::json routes = nlohmann::json::array();
  for (const auto& [key, n] : s.requests) {
    const compile::RouteLabels& l = *key.first.second;
    routes.push_back({{"mesh", l.mesh},
                      {"source_virtual_node",
                       key.first.first ? *key.first.first : std::string()},
                      {"virtual_service", l.virtual_service},
                      {"route", l.route},
                      {"target_virtual_node", l.target_virtual_node},
                      {"code", key.second},
                      {"requests", n}});
  }
  nlohmann::json targets = nlohmann::json::array();
  for (const auto& [key, t] : s.targets) {
    const compile::RouteLabels& l = *key.second;
    targets.push_back(
        {{"mesh", l.mesh},
         {"source_virtual_node", key.first ? *key.first : std::string()},
         {"virtual_service", l.virtual_service},
         {"route", l.route},
         {"target_virtual_node", l.target_virtual_node},
         {"requests", t.duration.count},
         {"duration_seconds_sum", t.duration.sum},
         {"retries", t.retries},
         {"timeouts", t.timeouts},
         {"request_bytes", t.request_bytes},
         {"response_bytes", t.response_bytes}});
  }
  nlohmann::json pools = nlohmann::json::array();
  for (const auto& [name, p] : s.pools) {
    pools.push_back({{"mesh", p.mesh},
                     {"virtual_node", p.virtual_node},
                     {"port", p.port},
                     {"overflow_connections", p.overflow_connections},
                     {"overflow_pending", p.overflow_pending},
                     {"overflow_requests", p.overflow_requests},
                     {"pending_requests", p.pending}});
  }
  nlohmann::json out = {{"workers", workers_.size()}};
  for (const ScalarStat& stat : kScalarStats)
    out[std::string(stat.name.substr(kMetricPrefix.size()))] = s.*stat.value;
  out["local_replies"] = local;
  out["tunnel"] = TunnelStatsJson(s.tunnel);
  out["requests"] = routes;
  out["targets"] = targets;
  out["pools"] = pools;
  out["config_warnings"] = warnings_;
  return out;
}

namespace {

nlohmann::json TargetsJson(const compile::ProxyConfig& c,
                           const std::vector<compile::WeightedCluster>& ts) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& t : ts) {
    out.push_back({{"virtual_node", t.labels->target_virtual_node},
                   {"cluster", c.clusters[t.cluster].name},
                   {"weight", t.weight}});
  }
  return out;
}

nlohmann::json RetryJson(const compile::RetryPolicy& p) {
  nlohmann::json events = nlohmann::json::array();
  if (p.server_error) events.push_back("server-error");
  if (p.gateway_error) events.push_back("gateway-error");
  if (p.client_error) events.push_back("client-error");
  if (p.stream_error) events.push_back("stream-error");
  if (p.connection_error) events.push_back("connection-error");
  if (p.status_503) events.push_back("503");
  if (p.grpc_cancelled) events.push_back("cancelled");
  if (p.grpc_deadline_exceeded) events.push_back("deadline-exceeded");
  if (p.grpc_internal) events.push_back("internal");
  if (p.grpc_resource_exhausted) events.push_back("resource-exhausted");
  if (p.grpc_unavailable) events.push_back("unavailable");
  return {{"max_retries", p.max_retries},
          {"per_try_timeout_ms", p.per_try_timeout.count()},
          {"events", events}};
}

}  // namespace

nlohmann::json Proxy::RoutesJson() const {
  nlohmann::json hosts = nlohmann::json::array();
  nlohmann::json gateways = nlohmann::json::array();
  if (published_ == nullptr) return {{"virtual_hosts", hosts}};
  const compile::ProxyConfig& c = *published_->config;
  for (const compile::VirtualHost& h : c.virtual_hosts) {
    nlohmann::json routes = nlohmann::json::array();
    for (const auto& r : h.http_routes) {
      routes.push_back(
          {{"name", r.name},
           {"priority", r.priority >= 0 ? nlohmann::json(r.priority)
                                        : nlohmann::json(nullptr)},
           {"grpc", r.grpc},
           {"targets", TargetsJson(c, r.targets)},
           {"retry", RetryJson(r.retry)},
           {"per_request_timeout_ms", r.per_request_timeout.count()},
           {"idle_timeout_ms", r.idle_timeout.count()}});
    }
    for (const auto& r : h.tcp_routes) {
      routes.push_back({{"name", r.name},
                        {"targets", TargetsJson(c, r.targets)},
                        {"idle_timeout_ms", r.idle_timeout.count()}});
    }
    hosts.push_back({{"mesh", h.mesh},
                     {"virtual_service", h.virtual_service},
                     {"port", h.port},
                     {"protocol", std::string(model::EnumName(h.protocol))},
                     {"routes", routes}});
  }
  for (const compile::GatewayListener& g : c.gateways) {
    nlohmann::json routes = nlohmann::json::array();
    for (const auto& r : g.routes) {
      const compile::VirtualHost& h = c.virtual_hosts[r.virtual_host];
      routes.push_back(
          {{"name", r.name},
           {"priority", r.priority >= 0 ? nlohmann::json(r.priority)
                                        : nlohmann::json(nullptr)},
           {"virtual_service", h.virtual_service},
           {"port", h.port},
           {"rewrite_host", r.rewrite_host},
           {"rewrite_path", r.path_rewrite.active()
                                ? nlohmann::json(r.path_rewrite.Describe())
                                : nlohmann::json(nullptr)}});
    }
    gateways.push_back({{"mesh", g.mesh},
                        {"virtual_gateway", g.virtual_gateway},
                        {"port", g.port},
                        {"routes", routes}});
  }
  return {{"model_version", c.model_version},
          {"virtual_hosts", hosts},
          {"gateways", gateways}};
}

nlohmann::json Proxy::ClustersJson() const {
  nlohmann::json out = nlohmann::json::array();
  if (published_ == nullptr) return out;
  const compile::ProxyConfig& c = *published_->config;
  for (size_t i = 0; i < c.clusters.size(); ++i) {
    const compile::Cluster& cl = c.clusters[i];
    nlohmann::json eps = nlohmann::json::array();
    nlohmann::json states = nlohmann::json::array();
    if (published_->endpoints[i]) {
      for (const auto& a : *published_->endpoints[i]) {
        std::string key = a.ToString();
        static constexpr const char* kHealth[] = {"healthy", "ejected",
                                                  "unhealthy"};
        states.push_back(
            {{"address", key},
             {"health", kHealth[static_cast<int>(HealthOf(cl.name, key))]}});
        eps.push_back(std::move(key));
      }
    }
    out.push_back({{"name", cl.name},
                   {"mesh", cl.mesh},
                   {"virtual_node", cl.virtual_node},
                   {"port", cl.port},
                   {"protocol", std::string(model::EnumName(cl.protocol))},
                   {"dns_hostname", cl.dns_hostname},
                   {"connection_pool",
                    {{"max_connections", cl.pool.max_connections},
                     {"max_pending_requests", cl.pool.max_pending_requests},
                     {"max_requests", cl.pool.max_requests}}},
                   {"endpoints", eps},
                   {"endpoint_health", states}});
  }
  return out;
}

}  // namespace nodemesh::proxy
