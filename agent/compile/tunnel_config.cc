#include "agent/compile/tunnel_config.h"

#include <openssl/pem.h>

#include <cstdio>
#include <optional>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace nodemesh::compile {
namespace {

std::string Key(const std::string& caller, const std::string& target,
                uint16_t port) {
  return absl::StrCat(caller, " ", target, " ", port);
}

// A virtual node's spec, or null.
const model::VirtualNodeSpec* FindNode(const model::Snapshot& snap,
                                       std::string_view mesh,
                                       std::string_view name) {
  auto it = snap.resources.find(
      model::ResourceIdView(model::ResourceKind::kVirtualNode, mesh, "", name));
  if (it == snap.resources.end()) return nullptr;
  return std::get_if<model::VirtualNodeSpec>(&it->second->spec);
}

// The SPIFFE ID an sds certificate names, if it is one.
std::string SdsSpiffeId(const std::optional<model::TlsCertificate>& cert) {
  if (cert && cert->sds &&
      absl::StartsWith(cert->sds->secret_name, "spiffe://"))
    return cert->sds->secret_name;
  return "";
}

// Loads a PEM bundle into a store (main thread; files named by specs).
TrustStore LoadStore(const std::string& path, std::vector<std::string>* warn) {
  auto store = tls::LoadTrustBundle(path);
  if (!store.ok()) {
    warn->emplace_back(store.status().message());
    return nullptr;
  }
  return TrustStore(store->release(), X509_STORE_free);
}

// Where a validation context's trust points: a file's store, or null (the
// CA bundle: acm and sds map to the mesh's own roots).
bool CompileTrust(const model::TlsValidationTrust& trust, TrustStore* out,
                  std::vector<std::string>* warn) {
  if (trust.file) {
    *out = LoadStore(trust.file->certificate_chain, warn);
    return *out != nullptr;
  }
  out->reset();
  return true;
}

// Target virtual nodes ("mesh/vn") that virtual service `name` of `mesh`
// routes to, through any of its ports.
void TargetsOfService(const ProxyConfig& config, const std::string& mesh,
                      const std::string& name,
                      std::set<std::pair<std::string, uint16_t>>* out) {
  auto it = config.by_name.find(absl::AsciiStrToLower(name));
  if (it == config.by_name.end()) return;
  for (uint32_t vh : it->second) {
    const VirtualHost& h = config.virtual_hosts[vh];
    if (h.mesh != mesh) continue;
    auto add = [&](const std::vector<WeightedCluster>& targets) {
      for (const WeightedCluster& t : targets) {
        const Cluster& c = config.clusters[t.cluster];
        out->insert({absl::StrCat(c.mesh, "/", c.virtual_node), c.port});
      }
    };
    for (const HttpRouteEntry& r : h.http_routes) add(r.targets);
    for (const TcpRouteEntry& r : h.tcp_routes) add(r.targets);
  }
}

// The tls of the VirtualGateway listeners this node serves.
void CompileGatewayTls(const TunnelInputs& in, TunnelConfig* out,
                       std::vector<std::string>* warnings) {
  for (const GatewayListener& g : in.proxy->gateways) {
    auto it = in.snapshot->resources.find(model::ResourceIdView(
        model::ResourceKind::kVirtualGateway, g.mesh, "", g.virtual_gateway));
    if (it == in.snapshot->resources.end()) continue;
    const auto* spec =
        std::get_if<model::VirtualGatewaySpec>(&it->second->spec);
    if (spec == nullptr) continue;
    for (const model::VirtualGatewayListener& l : spec->listeners) {
      if (l.port_mapping.port != g.port || !l.tls ||
          l.tls->mode == model::TlsMode::kDisabled)
        continue;
      const std::string where =
          absl::StrCat("VirtualGateway ", g.mesh, "/", g.virtual_gateway,
                       " listener ", g.port, " tls");
      GatewayTls t;
      t.mode = l.tls->mode;
      std::optional<tls::Certificate> file_cert;
      std::shared_ptr<const tls::IdentityStore::Credentials> minted;
      const tls::Certificate* cert = nullptr;
      if (l.tls->certificate.file) {
        auto c = tls::LoadCertificateFiles(
            l.tls->certificate.file->certificate_chain,
            l.tls->certificate.file->private_key);
        if (c.ok()) {
          file_cert = std::move(*c);
          cert = &*file_cert;
        } else {
          warnings->push_back(absl::StrCat(where, ": ", c.status().message()));
        }
      } else if (l.tls->certificate.sds && in.identities != nullptr) {
        minted = in.identities->Get(out->gateway_identity[g.virtual_gateway]);
        if (minted) cert = &minted->certificate;
      } else if (l.tls->certificate.acm) {
        warnings->push_back(absl::StrCat(
            where,
            ": acm certificates are not available outside AWS; use "
            "file or sds"));
      }
      tls::ContextOptions o;
      o.certificate = cert;
      o.alpn_any_of = {"h2", "http/1.1"};
      TrustStore trust;
      if (l.tls->validation) {
        if (!CompileTrust(l.tls->validation->trust, &trust, warnings))
          cert = nullptr;  // unreadable trust: refuse rather than admit all
        o.trust = trust != nullptr ? trust.get() : in.ca_trust;
        o.require_peer_cert = true;
        if (l.tls->validation->subject_alternative_names)
          t.sans = l.tls->validation->subject_alternative_names->match_exact;
      }
      if (cert != nullptr) {
        auto ctx = tls::MakeServerContext(o);
        if (ctx.ok())
          t.context = *ctx;
        else
          warnings->push_back(
              absl::StrCat(where, ": ", ctx.status().message()));
      } else if (!l.tls->certificate.acm) {
        warnings->push_back(absl::StrCat(where, ": no certificate yet"));
      }
      out->gateway_tls[g.port] = std::move(t);
    }
  }
}

}  // namespace

absl::StatusOr<std::vector<ClusterNode>> ParseClusterNodes(
    const nlohmann::json& j) {
  if (!j.is_array())
    return absl::InvalidArgumentError("nodes.json: not a JSON array");
  std::vector<ClusterNode> out;
  for (size_t i = 0; i < j.size(); ++i) {
    const nlohmann::json& e = j[i];
    auto where = [&](const char* field) {
      return absl::StrCat("nodes.json[", i, "].", field);
    };
    if (!e.is_object() || !e.contains("name") || !e["name"].is_string() ||
        e["name"].get<std::string>().empty())
      return absl::InvalidArgumentError(
          absl::StrCat(where("name"), ": a non-empty string is required"));
    ClusterNode n;
    n.name = e["name"].get<std::string>();
    if (!e.contains("address") || !e["address"].is_string())
      return absl::InvalidArgumentError(
          absl::StrCat(where("address"), ": an IP address is required"));
    n.address = e["address"].get<std::string>();
    if (!net::SocketAddress::FromIpPort(n.address, 1).ok())
      return absl::InvalidArgumentError(absl::StrCat(
          where("address"), ": '", n.address, "' is not an IP address"));
    if (e.contains("tunnelPort")) {
      if (!e["tunnelPort"].is_number_integer() ||
          e["tunnelPort"].get<int64_t>() < 1 ||
          e["tunnelPort"].get<int64_t>() > 65535)
        return absl::InvalidArgumentError(
            absl::StrCat(where("tunnelPort"), ": a port 1..65535 is required"));
      n.tunnel_port = static_cast<uint16_t>(e["tunnelPort"].get<int64_t>());
    }
    if (e.contains("workloadCidrs")) {
      if (!e["workloadCidrs"].is_array())
        return absl::InvalidArgumentError(
            absl::StrCat(where("workloadCidrs"), ": an array is required"));
      for (const auto& c : e["workloadCidrs"])
        if (c.is_string()) n.workload_cidrs.push_back(c.get<std::string>());
    }
    out.push_back(std::move(n));
  }
  return out;
}

std::string VirtualNodeIdentity(const model::VirtualNodeSpec* spec,
                                std::string_view trust_domain,
                                std::string_view mesh, std::string_view name) {
  if (spec != nullptr) {
    for (const model::Listener& l : spec->listeners) {
      if (!l.tls) continue;
      std::string id = SdsSpiffeId(l.tls->certificate);
      if (!id.empty()) return id;
    }
    const model::BackendDefaults* d =
        spec->backend_defaults ? &*spec->backend_defaults : nullptr;
    if (d && d->client_policy && d->client_policy->tls) {
      std::string id = SdsSpiffeId(d->client_policy->tls->certificate);
      if (!id.empty()) return id;
    }
  }
  return tls::SpiffeIdFor(trust_domain, mesh, name);
}

std::string GatewayIdentity(std::string_view trust_domain,
                            std::string_view mesh, std::string_view name) {
  return absl::StrCat("spiffe://", std::string(trust_domain), "/ns/",
                      std::string(mesh), "/vg/", std::string(name));
}

const ClientTlsPolicy* TunnelConfig::ClientPolicy(const std::string& caller,
                                                  const std::string& target,
                                                  uint16_t port) const {
  auto it = client_tls.find(Key(caller, target, port));
  return it == client_tls.end() ? nullptr : &it->second;
}

std::shared_ptr<const TunnelConfig> CompileTunnelConfig(
    const TunnelInputs& in, std::vector<std::string>* warnings) {
  auto out = std::make_shared<TunnelConfig>();
  out->trust_domain = in.trust_domain;
  out->node_name = in.node_name;
  const model::Snapshot& snap = *in.snapshot;
  const ProxyConfig& config = *in.proxy;

  std::map<std::string, const ClusterNode*> nodes;
  if (in.nodes != nullptr)
    for (const ClusterNode& n : *in.nodes) nodes[n.name] = &n;

  // "mesh/vn" -> identity, for every virtual node of the model.
  absl::flat_hash_map<std::string, std::string> identity_of;
  for (const auto& [id, r] : snap.resources) {
    if (id.kind != model::ResourceKind::kVirtualNode) continue;
    const auto* spec = std::get_if<model::VirtualNodeSpec>(&r->spec);
    identity_of[absl::StrCat(std::string(id.mesh), "/", std::string(id.name))] =
        VirtualNodeIdentity(spec, in.trust_domain, id.mesh, id.name);
  }
  auto identity = [&](const std::string& mesh, const std::string& vn) {
    auto it = identity_of.find(absl::StrCat(mesh, "/", vn));
    return it != identity_of.end()
               ? it->second
               : tls::SpiffeIdFor(in.trust_domain, mesh, vn);
  };

  // Who may reach whom: each virtual node's backends, each gateway's routes.
  // "mesh/vn" of a target -> identities allowed.
  absl::flat_hash_map<std::string, absl::flat_hash_set<std::string>> allowed;
  for (const auto& [id, r] : snap.resources) {
    if (id.kind != model::ResourceKind::kVirtualNode) continue;
    const auto* spec = std::get_if<model::VirtualNodeSpec>(&r->spec);
    if (spec == nullptr) continue;
    std::string caller = identity(std::string(id.mesh), std::string(id.name));
    for (const model::Backend& b : spec->backends) {
      if (!b.virtual_service) continue;
      std::set<std::pair<std::string, uint16_t>> targets;
      TargetsOfService(config, std::string(id.mesh),
                       b.virtual_service->virtual_service_name, &targets);
      // The backend's clientPolicy, else the node's backendDefaults.
      const model::ClientPolicyTls* policy = nullptr;
      if (b.virtual_service->client_policy &&
          b.virtual_service->client_policy->tls)
        policy = &*b.virtual_service->client_policy->tls;
      else if (spec->backend_defaults &&
               spec->backend_defaults->client_policy &&
               spec->backend_defaults->client_policy->tls)
        policy = &*spec->backend_defaults->client_policy->tls;
      for (const auto& [target, port] : targets) {
        allowed[target].insert(caller);
        if (policy == nullptr || !policy->enforce.value_or(true)) continue;
        if (!policy->ports.empty() &&
            std::find(policy->ports.begin(), policy->ports.end(), port) ==
                policy->ports.end())
          continue;
        ClientTlsPolicy p;
        if (policy->validation.subject_alternative_names)
          p.sans = policy->validation.subject_alternative_names->match_exact;
        if (!CompileTrust(policy->validation.trust, &p.trust, warnings)) {
          // Unreadable trust: nothing can verify, so nothing is reached.
          p.sans = {"<unreadable trust file>"};
        }
        if (policy->certificate && policy->certificate->file) {
          auto cert = tls::LoadCertificateFiles(
              policy->certificate->file->certificate_chain,
              policy->certificate->file->private_key);
          if (cert.ok()) {
            tls::ContextOptions o;
            o.certificate = &*cert;
            o.trust = in.ca_trust;
            auto ctx = tls::MakeClientContext(o);
            if (ctx.ok())
              p.client_context = *ctx;
            else
              warnings->emplace_back(ctx.status().message());
          } else {
            warnings->emplace_back(cert.status().message());
          }
        }
        auto slash = target.find('/');
        out->client_tls[Key(
            caller, identity(target.substr(0, slash), target.substr(slash + 1)),
            port)] = std::move(p);
      }
    }
  }
  for (const GatewayListener& g : config.gateways) {
    std::string caller =
        GatewayIdentity(in.trust_domain, g.mesh, g.virtual_gateway);
    out->gateway_identity[g.virtual_gateway] = caller;
    for (const GatewayRouteEntry& r : g.routes) {
      const VirtualHost& h = config.virtual_hosts[r.virtual_host];
      std::set<std::pair<std::string, uint16_t>> targets;
      TargetsOfService(config, h.mesh, h.virtual_service, &targets);
      for (const auto& t : targets) allowed[t.first].insert(caller);
    }
  }

  std::set<std::string> minted;
  for (const auto& [name, id] : out->gateway_identity) minted.insert(id);
  CompileGatewayTls(in, out.get(), warnings);
  for (const auto& [wid, w] : *in.workloads) {
    std::string key = absl::StrCat(w.mesh, "/", w.virtual_node);
    std::string id = identity(w.mesh, w.virtual_node);
    if (!w.local()) {
      auto node = nodes.find(w.node);
      if (node == nodes.end()) {
        warnings->push_back(absl::StrCat(
            "workload ", wid, ": node '", w.node,
            "' is not in cluster/nodes.json; its endpoints are not reachable"));
        continue;
      }
      auto tunnel = net::SocketAddress::FromIpPort(node->second->address,
                                                   node->second->tunnel_port);
      if (!tunnel.ok()) continue;
      std::vector<uint16_t> ports = w.ports;
      if (ports.empty()) {
        if (const auto* spec = FindNode(snap, w.mesh, w.virtual_node))
          for (const model::Listener& l : spec->listeners)
            ports.push_back(static_cast<uint16_t>(l.port_mapping.port));
      }
      for (uint16_t port : ports) {
        auto ep = net::SocketAddress::FromIpPort(w.address, port);
        if (!ep.ok()) continue;
        out->remote[ep->ToString()] = {*tunnel, w.node, id};
      }
      continue;
    }
    minted.insert(id);
    if (in.node_id && w.cgroup_id != 0)
      out->workload_identity[in.node_id(w.mesh, w.virtual_node)] = id;
    const model::VirtualNodeSpec* spec = FindNode(snap, w.mesh, w.virtual_node);
    if (spec == nullptr) continue;
    for (const model::Listener& l : spec->listeners) {
      uint16_t port = static_cast<uint16_t>(l.port_mapping.port);
      // A workload's ports are its listeners' ports unless it says.
      bool serves = w.ports.empty() || std::find(w.ports.begin(), w.ports.end(),
                                                 port) != w.ports.end();
      if (!serves) continue;
      auto ep = net::SocketAddress::FromIpPort(w.address, port);
      if (!ep.ok()) continue;
      LocalTarget t;
      t.mesh = w.mesh;
      t.virtual_node = w.virtual_node;
      t.identity = id;
      if (auto a = allowed.find(key); a != allowed.end()) t.allowed = a->second;
      if (l.tls) {
        t.mode = l.tls->mode;
        if (l.tls->mode != model::TlsMode::kDisabled && l.tls->validation) {
          t.validate = true;
          if (l.tls->validation->subject_alternative_names)
            t.sans = l.tls->validation->subject_alternative_names->match_exact;
          if (!CompileTrust(l.tls->validation->trust, &t.trust, warnings))
            t.sans = {"<unreadable trust file>"};
        }
        if (l.tls->mode != model::TlsMode::kDisabled &&
            l.tls->certificate.file && !out->server_contexts.contains(id)) {
          auto cert = tls::LoadCertificateFiles(
              l.tls->certificate.file->certificate_chain,
              l.tls->certificate.file->private_key);
          if (cert.ok()) {
            tls::ContextOptions o;
            o.certificate = &*cert;
            o.trust = in.ca_trust;
            auto ctx = tls::MakeServerContext(o);
            if (ctx.ok())
              out->server_contexts[id] = *ctx;
            else
              warnings->emplace_back(ctx.status().message());
          } else {
            warnings->emplace_back(cert.status().message());
          }
        }
      }
      out->local[ep->ToString()] = std::move(t);
    }
  }
  out->identities.assign(minted.begin(), minted.end());
  return out;
}

}  // namespace nodemesh::compile
