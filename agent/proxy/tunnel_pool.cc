#include "agent/proxy/tunnel_pool.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "agent/proxy/hbone_connection.h"
#include "agent/proxy/worker.h"
#include "glog/logging.h"

namespace nodemesh::proxy {

TunnelPool::TunnelPool(Worker* worker) : worker_(worker) {}
TunnelPool::~TunnelPool() = default;

absl::StatusOr<HboneConnection*> TunnelPool::ConnectionFor(
    const compile::TunnelConfig& config, const std::string& caller,
    const compile::RemoteEndpoint& remote, const net::SocketAddress& endpoint) {
  const compile::ClientTlsPolicy* policy =
      config.ClientPolicy(caller, remote.identity, endpoint.port());
  // Per target port too: a client policy may differ by port.
  std::string key = absl::StrCat(caller, "|", remote.tunnel.ToString(), "|",
                                 remote.identity, "|", endpoint.port());
  auto& list = pool_[key];
  for (HboneConnection* c : list) {
    if (c->HasCapacity()) return c;
  }
  SSL_CTX* ctx = nullptr;
  std::shared_ptr<const tls::IdentityStore::Credentials> creds;
  if (policy != nullptr && policy->client_context != nullptr) {
    ctx = policy->client_context.get();
  } else if (worker_->options().identities != nullptr &&
             (creds = worker_->options().identities->Get(caller))) {
    ctx = creds->client.get();
  }
  if (ctx == nullptr) {
    worker_->stats().tunnel.Refuse(TunnelRefusal::kNoCredentials);
    LOG_EVERY_N(WARNING, 20)
        << "tunnel to " << remote.node << ": no certificate for "
        << (caller.empty() ? "an unknown caller" : caller)
        << " (is --signing_cert set?)";
    return absl::FailedPreconditionError(
        absl::StrCat("no certificate for caller ", caller));
  }
  auto fd = net::ConnectTcp(remote.tunnel, worker_->options().socket_mark);
  if (!fd.ok()) return fd.status();
  // Small records go out at once (Nagle would hold a request's last
  // record for the previous one's ACK).
  int one = 1;
  (void)::setsockopt(fd->get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  auto* conn = worker_->Make<HboneConnection>(
      worker_, std::move(*fd), HboneConnection::Role::kClient, ctx,
      remote.identity, key, remote.tunnel.ToString());
  conn->SetServerPolicy(policy, caller, endpoint.port());
  conn->Start();
  if (conn->closed()) return absl::UnavailableError("tunnel connect failed");
  pool_[key].push_back(conn);
  return conn;
}

absl::StatusOr<net::UniqueFd> TunnelPool::Open(
    const compile::TunnelConfig& config, const std::string& caller,
    const compile::RemoteEndpoint& remote, const net::SocketAddress& endpoint) {
  auto conn = ConnectionFor(config, caller, remote, endpoint);
  if (!conn.ok()) return conn.status();
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
                   pair) != 0)
    return absl::ResourceExhaustedError("socketpair failed");
  net::UniqueFd ours(pair[0]), theirs(pair[1]);
  if (!(*conn)->OpenStream(std::move(theirs), endpoint.ToString()))
    return absl::UnavailableError("tunnel stream refused");
  return ours;
}

absl::StatusOr<std::shared_ptr<TunnelChannel>> TunnelPool::OpenChannel(
    const compile::TunnelConfig& config, const std::string& caller,
    const compile::RemoteEndpoint& remote, const net::SocketAddress& endpoint) {
  auto conn = ConnectionFor(config, caller, remote, endpoint);
  if (!conn.ok()) return conn.status();
  auto ch = (*conn)->OpenChannel(endpoint.ToString());
  if (ch == nullptr) return absl::UnavailableError("tunnel stream refused");
  return ch;
}

void TunnelPool::Reauthorize(const compile::TunnelConfig* config) {
  // Reauthorize may close connections (which unregister): walk a copy.
  std::vector<HboneConnection*> all(all_.begin(), all_.end());
  for (HboneConnection* c : all) {
    if (all_.contains(c)) c->Reauthorize(config);
  }
}

void TunnelPool::Forget(HboneConnection* connection) {
  auto it = pool_.find(connection->pool_key());
  if (it == pool_.end()) return;
  auto& list = it->second;
  list.erase(std::remove(list.begin(), list.end(), connection), list.end());
  if (list.empty()) pool_.erase(it);
}

absl::StatusOr<SSL_CTX*> TunnelPool::ServerContext() {
  if (server_ctx_ != nullptr) return server_ctx_.get();
  tls::ContextOptions o;
  o.trust = worker_->options().ca_trust;
  o.require_peer_cert = true;
  auto ctx = tls::MakeServerContext(o);
  if (!ctx.ok()) return ctx.status();
  server_ctx_ = *ctx;
  select_ = [this](std::string_view sni) { return SelectServerContext(sni); };
  tls::SetServerNameSelector(server_ctx_.get(), &select_);
  return server_ctx_.get();
}

SSL_CTX* TunnelPool::SelectServerContext(std::string_view sni) {
  const auto& snap = worker_->snapshot();
  const compile::TunnelConfig* cfg = snap ? snap->tunnel.get() : nullptr;
  if (cfg == nullptr) return nullptr;
  std::string id(sni);
  if (auto it = cfg->server_contexts.find(id);
      it != cfg->server_contexts.end()) {
    selected_ctx_ = it->second;
    return selected_ctx_.get();
  }
  if (worker_->options().identities == nullptr) return nullptr;
  selected_ = worker_->options().identities->Get(id);
  return selected_ ? selected_->server.get() : nullptr;
}

}  // namespace nodemesh::proxy
