#pragma once

// The tunnel between nodes (the HBONE convention): one mutual-TLS 1.3
// connection between two agents carrying HTTP/2, each stream a CONNECT to
// one endpoint whose bytes then flow as DATA both ways.
//
// Client side (the caller's node): the worker's TunnelPool opens a stream
// per upstream connection to a remote endpoint and hands the caller one
// end of a socketpair; the stream pumps the other end. Server side (the
// endpoint's node): accepted on the tunnel port; each CONNECT is
// authorized (the caller's certificate against the target listener's
// validation, the caller's backends as the allow-list) and pumped to a
// marked connection to the local endpoint.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "agent/compile/tunnel_config.h"
#include "agent/http/h2_codec.h"
#include "agent/net/unique_fd.h"
#include "agent/proxy/proxy_stats.h"
#include "agent/proxy/tunnel_channel.h"
#include "agent/proxy/worker.h"
#include "agent/tls/tls.h"

namespace nodemesh::proxy {

class HboneConnection final : public WorkerObject, http::H2Visitor {
 public:
  enum class Role { kClient, kServer };

  // Client: `fd` is connecting to the destination node's tunnel port; `sni`
  // names the target identity; `policy` (may be null) is what the caller
  // demands of the target's certificate, checked after the handshake.
  // Server: `fd` was accepted; `ctx` selects the certificate by SNI.
  HboneConnection(Worker* worker, net::UniqueFd fd, Role role, SSL_CTX* ctx,
                  const std::string& sni, std::string pool_key,
                  std::string peer_label);
  ~HboneConnection() override;

  void Start();
  // Client: a CONNECT to `authority` ("ip:port") whose bytes are those of
  // `local` (the pool's end of a socketpair). False: no room (the caller
  // then opens another connection).
  bool OpenStream(net::UniqueFd local, const std::string& authority);
  // Client: a CONNECT to `authority` used in-process (see TunnelChannel);
  // null when there is no room.
  std::shared_ptr<TunnelChannel> OpenChannel(const std::string& authority);
  // Streams may still be opened here.
  bool HasCapacity() const;
  const std::string& pool_key() const { return pool_key_; }
  // What the destination must prove (client side), set before Start:
  // the policy of (caller, target identity = SNI, port).
  void SetServerPolicy(const compile::ClientTlsPolicy* policy,
                       const std::string& caller, uint16_t port);
  // The tunnel's tables changed: a client judges the destination's
  // certificate again by its (new) client policy; a server re-checks
  // every stream it admitted (validation, allow-list) and ends those the
  // new rules refuse.
  void Reauthorize(const compile::TunnelConfig* cfg);

  void OnTick(Clock::time_point now) override;
  void Abort() override { Close(); }
  void Drain() override;
  void OnFlush() override;

 private:
  friend class TunnelChannel;
  struct Stream;

  // In-process channels: their user hears of changes after the codec is
  // done parsing (never from inside it).
  void Notify(const std::shared_ptr<TunnelChannel>& channel);
  void DispatchNotifications();
  void ChannelWrote(TunnelChannel* channel);
  void ChannelConsumed(TunnelChannel* channel, size_t n);
  void ReleaseChannel(TunnelChannel* channel);

  void OnEvents(uint32_t events);
  void DoHandshake();
  bool CheckServer();  // client: clientPolicy against the server's cert
  void OnReadable();
  void ReadAll();
  void Flush();
  void UpdateInterest();
  void Close();
  void Refuse(TunnelRefusal reason, std::string_view detail);

  // Streams.
  Stream* Find(int32_t id);
  void OnStreamEvents(int32_t id, uint32_t events);
  void PumpFromLocal(Stream* s);
  void PumpToLocal(Stream* s);
  void UpdateStreamInterest(Stream* s);
  void CloseStream(Stream* s, uint32_t reset_code);
  void ServeConnect(int32_t id, const http::H2HeaderBlock& block);
  // Server: whether the peer may reach `authority` under `cfg`; kCount
  // when it may, else why not (with a log line in *detail).
  TunnelRefusal Authorize(const compile::TunnelConfig* cfg,
                          const std::string& authority, std::string* detail);
  void Answer(int32_t id, int status, TunnelRefusal reason,
              std::string_view detail);
  void Respond(Stream* s, int status);

  // H2Visitor
  void OnHeaders(int32_t stream_id, const http::H2HeaderBlock& block,
                 bool end_stream) override;
  void OnData(int32_t stream_id, std::string_view data) override;
  void OnEndStream(int32_t stream_id) override;
  void OnStreamClose(int32_t stream_id, uint32_t error_code) override;
  void OnGoaway(int32_t last_stream_id, uint32_t error) override;
  http::H2OutBody* BodyOf(int32_t stream_id) override;
  void OnBodyDrained(int32_t stream_id) override;

  Worker* const worker_;
  net::UniqueFd fd_;
  const Role role_;
  tls::TlsSocket tls_;
  http::H2Codec codec_;
  const std::string pool_key_;
  const std::string peer_label_;  // for logs: the peer's address
  std::optional<compile::ClientTlsPolicy> policy_;  // client side
  std::string caller_;         // client: the identity it presents
  std::string sni_;            // client: the target identity
  uint16_t port_ = 0;          // client: the target port (its policy's)
  std::string peer_identity_;  // after the handshake
  absl::flat_hash_map<int32_t, std::unique_ptr<Stream>> streams_;
  uint32_t opened_ = 0;  // client streams opened, not yet closed
  std::vector<std::shared_ptr<TunnelChannel>> notify_;
  bool in_dispatch_ = false;
  std::string out_;  // TLS plaintext queued (HTTP/2 frames)
  size_t out_off_ = 0;
  uint32_t interest_ = 0;
  bool connected_ = false;
  bool handshake_done_ = false;
  bool in_flush_ = false;
  bool going_away_ = false;
  Clock::time_point started_;
  Clock::time_point idle_since_;
};

}  // namespace nodemesh::proxy
