#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "agent/net/unique_fd.h"

namespace nodemesh::net {

// An IPv4 or IPv6 address with a port, as a value. Text form is
// "127.0.0.1:15000" or "[::1]:15000"; names are never resolved here, so
// parsing never blocks.
class SocketAddress {
 public:
  SocketAddress();  // AF_UNSPEC; valid() is false

  static absl::StatusOr<SocketAddress> Parse(std::string_view text);
  // An IP address without brackets ("10.0.0.1", "fd00::1") and a port.
  static absl::StatusOr<SocketAddress> FromIpPort(std::string_view ip,
                                                  uint16_t port);
  static absl::StatusOr<SocketAddress> FromSockaddr(const sockaddr* sa,
                                                    socklen_t len);

  bool valid() const { return len_ != 0; }
  int family() const { return storage_.ss_family; }
  uint16_t port() const;  // host order
  SocketAddress WithPort(uint16_t port) const;

  const sockaddr* addr() const {
    return reinterpret_cast<const sockaddr*>(&storage_);
  }
  socklen_t addr_len() const { return len_; }

  std::string ToString() const;

  friend bool operator==(const SocketAddress& a, const SocketAddress& b);
  friend bool operator!=(const SocketAddress& a, const SocketAddress& b) {
    return !(a == b);
  }

 private:
  sockaddr_storage storage_;
  socklen_t len_ = 0;
};

absl::Status SetNonBlocking(int fd);

// A non-blocking, close-on-exec listening socket. SO_REUSEADDR is always set
// so a restart does not wait for TIME_WAIT; SO_REUSEPORT lets a new agent
// bind beside a draining one.
// A non-zero `mark` is set (SO_MARK) on the listener; accepted sockets
// inherit it.
absl::StatusOr<UniqueFd> ListenTcp(const SocketAddress& addr, int backlog,
                                   bool reuse_port, uint32_t mark = 0);

// A non-blocking, close-on-exec Unix stream listener at `path`, mode 0600
// (root only when root runs it). It is bound at a temporary name and renamed
// over `path`, so a new agent replaces the socket of a running one with no
// moment where the path is missing; the old listener keeps its accepted
// connections.
absl::StatusOr<UniqueFd> ListenUnix(const std::string& path, int backlog);

// Starts a non-blocking connect. The connection is usually still in progress
// on return: wait for EPOLLOUT, then check SocketError().
// A non-zero `mark` is set (SO_MARK) before the connect.
// With `source`, the socket is bound to that address first, with
// IP_BIND_ADDRESS_NO_PORT: the port is chosen at connect() for the whole
// 4-tuple, so many source addresses do not each reserve a port.
absl::StatusOr<UniqueFd> ConnectTcp(const SocketAddress& addr,
                                    uint32_t mark = 0,
                                    const SocketAddress* source = nullptr);

// The pending error of a socket (SO_ERROR), e.g. the result of a connect.
absl::Status SocketError(int fd);

// Accepts one connection as non-blocking and close-on-exec. Returns an empty
// UniqueFd when nothing is pending (EAGAIN, or the peer already aborted), an
// error status for real failures (EMFILE, ...). `peer` may be null.
absl::StatusOr<UniqueFd> Accept(int listen_fd, SocketAddress* peer);

absl::StatusOr<SocketAddress> LocalAddress(int fd);
absl::StatusOr<SocketAddress> PeerAddress(int fd);

}  // namespace nodemesh::net
