#include "agent/etcd_cluster.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>

#include <cstdio>
#include <fstream>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "agent/compile/tunnel_config.h"
#include "glog/logging.h"
#include "nodemesh/abi.h"

namespace nodemesh {
namespace {

constexpr char kModelRoot[] = "api/";  // where model keys appear as files

// The first global IPv4 address of an interface that is up.
absl::StatusOr<std::string> FirstGlobalAddress() {
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return absl::InternalError("getifaddrs failed");
  std::string found;
  for (ifaddrs* i = list; i != nullptr && found.empty(); i = i->ifa_next) {
    if (i->ifa_addr == nullptr || i->ifa_addr->sa_family != AF_INET) continue;
    if ((i->ifa_flags & IFF_UP) == 0 || (i->ifa_flags & IFF_LOOPBACK) != 0)
      continue;
    char text[INET_ADDRSTRLEN];
    const auto* in = reinterpret_cast<const sockaddr_in*>(i->ifa_addr);
    if (::inet_ntop(AF_INET, &in->sin_addr, text, sizeof(text)) != nullptr)
      found = text;
  }
  ::freeifaddrs(list);
  if (found.empty())
    return absl::FailedPreconditionError(
        "no IPv4 address on any interface that is up; give --node_address");
  return found;
}

absl::StatusOr<etcd::Client::Options> ClientOptions(const AgentConfig& c) {
  etcd::Client::Options o;
  for (const std::string& e : c.etcd_endpoints) {
    auto addr = etcd::ParseEndpoint(e);
    if (!addr.ok())
      return absl::InvalidArgumentError(
          absl::StrCat("--etcd_endpoints: ", addr.status().message()));
    o.endpoints.push_back(*addr);
  }
  o.socket_mark = NM_DEFAULT_AGENT_MARK;
  return o;
}

std::string LeaseFile(const AgentConfig& c) {
  return c.state_dir + "/etcd_lease";
}

// The App Mesh API's writes run on the main loop, which also answers DNS
// and the admin endpoint: a partitioned etcd may hold it only briefly.
etcd::Client::Options ApiClientOptions(etcd::Client::Options o) {
  o.timeout = std::chrono::milliseconds(1000);
  return o;
}

std::string CacheFile(const AgentConfig& c) {
  return c.state_dir + "/etcd_cache.json";
}

}  // namespace

std::string EtcdCluster::ModelPathForKey(const std::string& model_prefix,
                                         const std::string& key) {
  std::string rest = key.substr(model_prefix.size());
  std::string path = kModelRoot + rest;
  if (!absl::EndsWith(rest, ".json") && !absl::EndsWith(rest, ".yaml") &&
      !absl::EndsWith(rest, ".yml"))
    path += ".json";
  return path;
}

std::string EtcdCluster::ModelKeyForPath(const std::string& model_prefix,
                                         const std::string& path) {
  std::string rest = path.substr(std::string_view(kModelRoot).size());
  if (absl::EndsWith(rest, ".json")) rest.resize(rest.size() - 5);
  return model_prefix + rest;
}

absl::StatusOr<std::unique_ptr<EtcdCluster>> EtcdCluster::Create(
    net::EventLoop* loop, const AgentConfig& config) {
  auto options = ClientOptions(config);
  if (!options.ok()) return options.status();
  std::string address = config.node_address;
  if (address.empty()) {
    auto found = FirstGlobalAddress();
    if (!found.ok()) return found.status();
    address = *found;
  }
  if (!net::SocketAddress::FromIpPort(address, 1).ok())
    return absl::InvalidArgumentError("--node_address=" + address +
                                      ": not an IP address");
  return std::unique_ptr<EtcdCluster>(
      new EtcdCluster(loop, config, *options, address));
}

EtcdCluster::EtcdCluster(net::EventLoop* loop, const AgentConfig& config,
                         const etcd::Client::Options& options,
                         std::string node_address)
    : loop_(loop),
      config_(config),
      options_(options),
      node_address_(std::move(node_address)),
      model_prefix_(config.etcd_prefix + "model/"),
      nodes_prefix_(config.etcd_prefix + "nodes/"),
      workloads_prefix_(config.etcd_prefix + "workloads/"),
      node_key_(config.etcd_prefix + "nodes/" + config.node_name),
      api_client_(ApiClientOptions(options)) {
  disconnected_since_ = std::chrono::steady_clock::now();
}

void EtcdCluster::AttachModel(model::ModelSource* model) {
  model_ = model;
  model->UseExternal(kModelRoot,
                     [this](const auto& writes) { return Commit(writes); });
  LoadCache();
}

void EtcdCluster::LoadCache() {
  std::ifstream in(CacheFile(config_));
  if (!in) return;
  nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
  if (!j.is_object() || !j.contains("kvs") || !j["kvs"].is_array()) {
    LOG(WARNING) << "etcd: " << CacheFile(config_)
                 << " is unreadable; starting without it";
    return;
  }
  etcd::Watcher::Batch batch;
  batch.reset = true;
  batch.revision = j.value("revision", int64_t{0});
  for (const nlohmann::json& e : j["kvs"]) {
    etcd::KeyValue kv;
    kv.key = e.value("key", "");
    if (!absl::Base64Unescape(e.value("value", ""), &kv.value)) continue;
    kv.mod_revision = e.value("revision", int64_t{0});
    batch.kvs.push_back(std::move(kv));
  }
  from_cache_ = true;
  OnBatch(batch);
  LOG(INFO) << "etcd: serving " << batch.kvs.size()
            << " keys cached at revision " << batch.revision
            << " until etcd answers";
}

void EtcdCluster::ScheduleCacheWrite() {
  if (cache_write_pending_) return;
  cache_write_pending_ = true;
  loop_->AddTimer(std::chrono::seconds(2), [this] {
    cache_write_pending_ = false;
    WriteCache();
  });
}

void EtcdCluster::WriteCache() const {
  nlohmann::json kvs = nlohmann::json::array();
  auto add = [&](const std::string& key, const std::string& value,
                 int64_t revision) {
    kvs.push_back({{"key", key},
                   {"value", absl::Base64Escape(value)},
                   {"revision", revision}});
  };
  for (const auto& [path, f] : model_->external())
    add(f.key.empty() ? ModelKeyForPath(model_prefix_, path) : f.key, f.text,
        f.revision);
  for (const auto& [key, value] : nodes_kv_) add(key, value, revision_);
  for (const auto& [key, value] : workloads_kv_) add(key, value, revision_);
  std::string path = CacheFile(config_);
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << nlohmann::json({{"revision", revision_}, {"kvs", kvs}}).dump();
    if (!out) {
      LOG(WARNING) << "etcd: cannot write " << tmp;
      return;
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0)
    LOG(WARNING) << "etcd: cannot rename " << tmp << " to " << path;
}

void EtcdCluster::Start(NodeController* node) {
  node_ = node;
  if (from_cache_) {
    PushNodes();
    PushWorkloads();
  }
  registrar_ = std::make_unique<etcd::Registrar>(
      options_, config_.lease_ttl_seconds, LeaseFile(config_),
      workloads_prefix_ + config_.node_name + "/");
  node->UseEtcdCluster(
      [this](std::map<std::string, nlohmann::json> local) { Publish(local); });
  registrar_->Start();
  watcher_ = std::make_unique<etcd::Watcher>(
      loop_, options_, config_.etcd_prefix,
      [this](const etcd::Watcher::Batch& b) { OnBatch(b); },
      [this](const etcd::Watcher::State& s) { OnState(s); });
  watcher_->Start();
  LOG(INFO) << "etcd: cluster mode, node " << config_.node_name << " at "
            << node_address_ << ", prefix " << config_.etcd_prefix;
}

void EtcdCluster::Stop() {
  if (watcher_) watcher_->Stop();
  if (registrar_) registrar_->Stop();
}

void EtcdCluster::Publish(const std::map<std::string, nlohmann::json>& local) {
  std::map<std::string, std::string> desired;
  nlohmann::json record = {{"name", config_.node_name},
                           {"address", node_address_},
                           {"workloadCidrs", nlohmann::json::array()}};
  if (config_.tunnel_port != 0) record["tunnelPort"] = config_.tunnel_port;
  desired[node_key_] = record.dump();
  for (const auto& [id, j] : local)
    desired[workloads_prefix_ + config_.node_name + "/" + id] = j.dump();
  published_ = desired;
  registrar_->SetDesired(std::move(desired));
}

void EtcdCluster::OnState(const etcd::Watcher::State& state) {
  bool was = watch_.connected;
  watch_ = state;
  if (was && !state.connected) {
    disconnected_since_ = std::chrono::steady_clock::now();
    LOG(WARNING) << "etcd: " << state.error
                 << "; serving the last state (revision " << revision_
                 << ") and reconnecting";
  } else if (!was && state.connected) {
    LOG(INFO) << "etcd: watching " << config_.etcd_prefix << " from revision "
              << revision_ + 1;
  }
}

void EtcdCluster::OnBatch(const etcd::Watcher::Batch& batch) {
  ++batches_;
  std::vector<model::ModelSource::ExternalChange> model_changes;
  bool nodes_changed = batch.reset, workloads_changed = batch.reset;
  bool resync = false;
  auto handle = [&](const etcd::KeyValue& kv, bool deleted) {
    ++events_;
    if (absl::StartsWith(kv.key, model_prefix_)) {
      model::ModelSource::ExternalChange c;
      c.path = ModelPathForKey(model_prefix_, kv.key);
      c.key = kv.key;
      c.revision = kv.mod_revision;
      if (!deleted) c.text = kv.value;
      model_changes.push_back(std::move(c));
    } else if (absl::StartsWith(kv.key, nodes_prefix_)) {
      if (deleted)
        nodes_kv_.erase(kv.key);
      else
        nodes_kv_[kv.key] = kv.value;
      nodes_changed = true;
    } else if (absl::StartsWith(kv.key, workloads_prefix_)) {
      if (deleted)
        workloads_kv_.erase(kv.key);
      else
        workloads_kv_[kv.key] = kv.value;
      workloads_changed = true;
    }
    // One of ours deleted under us (etcdctl del, a lease that expired
    // during a partition): the registrar writes it again.
    if (deleted && published_.count(kv.key)) resync = true;
  };
  if (batch.reset) {
    nodes_kv_.clear();
    workloads_kv_.clear();
    for (const etcd::KeyValue& kv : batch.kvs) handle(kv, false);
    model_->ApplyExternal(model_changes, true, batch.revision);
    // The cache (from_cache_ and no node yet) is not a list: not synced.
    if (node_ != nullptr) {
      if (!synced_)
        LOG(INFO) << "etcd: listed " << batch.kvs.size() << " keys at revision "
                  << batch.revision;
      synced_ = true;
    }
  } else {
    for (const etcd::Event& e : batch.events)
      handle(e.kv, e.type == etcd::Event::Type::kDelete);
    if (!model_changes.empty()) model_->ApplyExternal(model_changes, false);
  }
  revision_ = batch.revision;
  if (node_ == nullptr) return;  // the cache, before Start()
  ScheduleCacheWrite();
  if (nodes_changed) PushNodes();
  if (workloads_changed) PushWorkloads();
  if (resync && registrar_) registrar_->Resync();
}

void EtcdCluster::PushNodes() {
  std::vector<compile::ClusterNode> nodes;
  for (const auto& [key, value] : nodes_kv_) {
    auto j = nlohmann::json::parse(value, nullptr, false);
    auto parsed = compile::ParseClusterNodes(nlohmann::json::array({j}));
    if (!parsed.ok()) {
      LOG(ERROR) << "etcd: " << key << ": " << parsed.status().message()
                 << "; skipped";
      continue;
    }
    nodes.push_back(std::move(parsed->front()));
  }
  node_->SetClusterNodes(std::move(nodes));
}

void EtcdCluster::PushWorkloads() {
  std::vector<nlohmann::json> list;
  for (const auto& [key, value] : workloads_kv_) {
    auto j = nlohmann::json::parse(value, nullptr, false);
    if (!j.is_object()) {
      LOG(ERROR) << "etcd: " << key << ": not a JSON object; skipped";
      continue;
    }
    if (!j.contains("node")) {
      // The node is the key's: workloads/<node>/<id>.
      std::string rest = key.substr(workloads_prefix_.size());
      j["node"] = rest.substr(0, rest.find('/'));
    }
    list.push_back(std::move(j));
  }
  node_->SetRemoteWorkloads(list);
}

absl::StatusOr<int64_t> EtcdCluster::Commit(
    const std::vector<model::ModelSource::ExternalWrite>& writes) {
  std::vector<etcd::Compare> compares;
  std::vector<etcd::Write> ops;
  for (const auto& w : writes) {
    std::string key =
        w.key.empty() ? ModelKeyForPath(model_prefix_, w.path) : w.key;
    compares.push_back({key, w.expected_revision});
    ops.push_back({key, w.text, 0});
  }
  auto r = api_client_.Txn(compares, ops);
  if (!r.ok()) {
    ++commit_errors_;
    return absl::UnavailableError(absl::StrCat(
        "the cluster store (etcd) is unavailable, nothing was written: ",
        r.status().message()));
  }
  if (!r->succeeded) {
    ++conflicts_;
    return absl::AlreadyExistsError(
        "the resource changed in etcd since this agent read it (another "
        "writer was first); describe it again and retry");
  }
  ++commits_;
  return r->revision;
}

nlohmann::json EtcdCluster::StatusJson() const {
  nlohmann::json endpoints = config_.etcd_endpoints;
  etcd::Registrar::Status reg =
      registrar_ ? registrar_->status() : etcd::Registrar::Status();
  nlohmann::json j = {
      {"ready", ready()},
      {"endpoints", endpoints},
      {"prefix", config_.etcd_prefix},
      {"connected", watch_.connected},
      {"synced", synced_},
      {"revision", revision_},
      {"lists", watch_.lists},
      {"watch_connects", watch_.connects},
      {"node_address", node_address_},
      {"nodes", nodes_kv_.size()},
      {"remote_workloads", workloads_kv_.size()},
      {"registration",
       {{"ok", reg.ok},
        {"lease", std::to_string(reg.lease)},
        {"ttl_left", reg.ttl_left},
        {"lease_ttl", config_.lease_ttl_seconds},
        {"keys", published_.size()},
        {"error", reg.error.empty() ? nlohmann::json(nullptr)
                                    : nlohmann::json(reg.error)}}}};
  if (!watch_.connected) {
    j["error"] = watch_.error.empty() ? "not connected yet" : watch_.error;
    j["disconnected_seconds"] =
        std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                      disconnected_since_)
            .count();
  }
  return j;
}

void EtcdCluster::RenderMetrics(stats::PrometheusText* out) const {
  etcd::Registrar::Status reg =
      registrar_ ? registrar_->status() : etcd::Registrar::Status();
  out->Family("nodemesh_etcd_connected", "gauge",
              "1 while the watch on etcd is open (0: serving the last state)");
  out->Sample("nodemesh_etcd_connected", {},
              uint64_t{watch_.connected ? 1u : 0u});
  out->Family("nodemesh_etcd_revision", "gauge",
              "The etcd revision this agent's state reflects");
  out->Sample("nodemesh_etcd_revision", {}, static_cast<uint64_t>(revision_));
  out->Family("nodemesh_etcd_watch_events_total", "counter",
              "Keys changed in etcd that this agent applied (list entries "
              "included)");
  out->Sample("nodemesh_etcd_watch_events_total", {}, events_);
  out->Family("nodemesh_etcd_lists_total", "counter",
              "Full lists of the prefix (the first, and after a compaction)");
  out->Sample("nodemesh_etcd_lists_total", {}, watch_.lists);
  out->Family("nodemesh_etcd_watch_connects_total", "counter",
              "Watches opened (1 + reconnects)");
  out->Sample("nodemesh_etcd_watch_connects_total", {}, watch_.connects);
  out->Family("nodemesh_etcd_api_commits_total", "counter",
              "App Mesh API writes committed to etcd, by result (conflict: "
              "compare-and-swap lost; error: etcd unreachable)");
  out->Sample("nodemesh_etcd_api_commits_total", {{"result", "ok"}}, commits_);
  out->Sample("nodemesh_etcd_api_commits_total", {{"result", "conflict"}},
              conflicts_);
  out->Sample("nodemesh_etcd_api_commits_total", {{"result", "error"}},
              commit_errors_);
  out->Family("nodemesh_etcd_registration_ok", "gauge",
              "1 while this node's lease is alive and its keys written");
  out->Sample("nodemesh_etcd_registration_ok", {}, uint64_t{reg.ok ? 1u : 0u});
  out->Family("nodemesh_etcd_lease_renewals_total", "counter",
              "Renewals of this node's lease");
  out->Sample("nodemesh_etcd_lease_renewals_total", {}, reg.renewals);
  out->Family("nodemesh_etcd_lease_grants_total", "counter",
              "Leases granted (more than one: a lease expired and the "
              "registrations were written again)");
  out->Sample("nodemesh_etcd_lease_grants_total", {}, reg.grants);
  out->Family("nodemesh_etcd_registration_failures_total", "counter",
              "etcd calls of the registration that failed (retried)");
  out->Sample("nodemesh_etcd_registration_failures_total", {}, reg.failures);
}

absl::Status EtcdCluster::Deregister(const AgentConfig& config) {
  auto options = ClientOptions(config);
  if (!options.ok()) return options.status();
  etcd::Client client(*options);
  return etcd::Registrar::Deregister(
      &client, LeaseFile(config),
      config.etcd_prefix + "workloads/" + config.node_name + "/",
      config.etcd_prefix + "nodes/" + config.node_name);
}

}  // namespace nodemesh
