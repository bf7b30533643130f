#pragma once

// The in-process end of a tunnel stream: what an upstream connection to an
// endpoint on another node uses in place of a socket. Bytes written go
// straight into the stream's DATA; bytes the endpoint sends wait in `in`
// until the user consumes them (the stream's flow-control window opens as
// it does), with no socketpair and no extra copies through the kernel.
// Shared between the tunnel connection and its user, so that either may
// go first.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "agent/http/h2_codec.h"

namespace nodemesh::proxy {

class HboneConnection;

class TunnelChannelUser {
 public:
  virtual ~TunnelChannelUser() = default;
  // Something changed: bytes arrived, the endpoint finished, the stream
  // failed, or written bytes left (room again). Called outside the
  // tunnel's own parsing: the user may write, consume or release.
  virtual void OnTunnelEvent() = 0;
};

class TunnelChannel {
 public:
  // Bytes written but not yet taken by the stream, at most this many.
  static constexpr size_t kWriteRoom = 256 * 1024;

  // Takes what fits (0 when full: wait for an event); on a failed or
  // released channel takes everything and drops it.
  size_t Write(std::string_view bytes);
  // The endpoint's bytes not yet consumed.
  std::string_view Peek() const {
    std::string_view all = in_;
    return all.substr(in_off_);
  }
  void Consume(size_t n);
  // The endpoint ended its side and every byte was consumed.
  bool eof() const { return peer_end_ && in_off_ == in_.size(); }
  // Refused (a non-2xx answer to the CONNECT), reset, or the tunnel
  // connection is gone.
  bool failed() const { return failed_; }
  // The CONNECT was answered 2xx.
  bool established() const { return established_; }
  size_t write_backlog() const { return out_.pending(); }
  // The user is done: the stream is reset unless both sides ended.
  void Release();

  void set_user(TunnelChannelUser* user) { user_ = user; }

 private:
  friend class HboneConnection;
  HboneConnection* conn_ = nullptr;  // null once the stream is gone
  int32_t id_ = 0;
  TunnelChannelUser* user_ = nullptr;
  http::H2OutBody out_;  // user -> endpoint
  std::string in_;       // endpoint -> user
  size_t in_off_ = 0;
  bool established_ = false;
  bool peer_end_ = false;
  bool failed_ = false;
  bool notify_queued_ = false;
};

}  // namespace nodemesh::proxy
