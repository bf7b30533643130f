#pragma once

// A worker's side of the tunnel between nodes: the mutual-TLS connections
// it opened to other nodes' agents, pooled per (caller identity,
// destination node, target identity) and shared by every upstream
// connection to that node's endpoints; and the context its tunnel
// listener accepts with (the certificate picked by the SNI the caller
// sends: the target's identity).

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "agent/compile/tunnel_config.h"
#include "agent/net/socket.h"
#include "agent/net/unique_fd.h"
#include "agent/tls/tls.h"

namespace nodemesh::proxy {

class Worker;
class HboneConnection;
class TunnelChannel;

class TunnelPool {
 public:
  explicit TunnelPool(Worker* worker);
  ~TunnelPool();

  // A connected local socket whose bytes reach `endpoint` (on another
  // node) through a CONNECT stream, as `caller`; the stream opens on a
  // pooled connection with room, or on a new one.
  absl::StatusOr<net::UniqueFd> Open(const compile::TunnelConfig& config,
                                     const std::string& caller,
                                     const compile::RemoteEndpoint& remote,
                                     const net::SocketAddress& endpoint);
  // The same, in-process: the stream's bytes go to and from the returned
  // channel (no socketpair). For connections that stay HTTP.
  absl::StatusOr<std::shared_ptr<TunnelChannel>> OpenChannel(
      const compile::TunnelConfig& config, const std::string& caller,
      const compile::RemoteEndpoint& remote,
      const net::SocketAddress& endpoint);
  // A connection closed or going away: no new streams on it.
  void Forget(HboneConnection* connection);
  // Every open tunnel connection of the worker, both directions.
  void Register(HboneConnection* c) { all_.insert(c); }
  void Unregister(HboneConnection* c) { all_.erase(c); }
  // The tunnel's tables changed: each connection re-checks what it
  // admitted or trusted (see HboneConnection::Reauthorize).
  void Reauthorize(const compile::TunnelConfig* config);

  // The context the tunnel listener accepts with (null without a CA).
  absl::StatusOr<SSL_CTX*> ServerContext();

 private:
  SSL_CTX* SelectServerContext(std::string_view sni);
  // A pooled connection with room for a stream, or a new one.
  absl::StatusOr<HboneConnection*> ConnectionFor(
      const compile::TunnelConfig& config, const std::string& caller,
      const compile::RemoteEndpoint& remote,
      const net::SocketAddress& endpoint);

  Worker* const worker_;
  absl::flat_hash_map<std::string, std::vector<HboneConnection*>> pool_;
  absl::flat_hash_set<HboneConnection*> all_;
  tls::SslCtxPtr server_ctx_;
  std::function<SSL_CTX*(std::string_view)> select_;
  // The last pick, alive until OpenSSL took its own reference.
  std::shared_ptr<const tls::IdentityStore::Credentials> selected_;
  tls::SslCtxPtr selected_ctx_;
};

}  // namespace nodemesh::proxy
