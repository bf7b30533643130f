#include "agent/net/socket.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace nodemesh::net {
namespace {

absl::Status BadAddress(std::string_view text, std::string_view why) {
  // Error path only, so the copies do not matter.
  return absl::InvalidArgumentError(
      "address \"" + std::string(text) + "\": " + std::string(why) +
      "; expected \"127.0.0.1:15000\" or \"[::1]:15000\"");
}

bool ParsePort(std::string_view s, uint16_t* port) {
  if (s.empty() || s.size() > 5) return false;
  uint32_t v = 0;
  for (char c : s) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
    v = v * 10 + static_cast<uint32_t>(c - '0');
  }
  if (v > 65535) return false;
  *port = static_cast<uint16_t>(v);
  return true;
}

absl::StatusOr<SocketAddress> SockName(int fd, bool peer) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  sockaddr* sa = reinterpret_cast<sockaddr*>(&ss);
  int rc = peer ? ::getpeername(fd, sa, &len) : ::getsockname(fd, sa, &len);
  if (rc != 0) {
    return absl::ErrnoToStatus(
        errno, absl::StrCat(peer ? "getpeername" : "getsockname", " fd ", fd));
  }
  return SocketAddress::FromSockaddr(sa, len);
}

}  // namespace

SocketAddress::SocketAddress() { std::memset(&storage_, 0, sizeof(storage_)); }

absl::StatusOr<SocketAddress> SocketAddress::FromIpPort(std::string_view ip,
                                                        uint16_t port) {
  std::string host(ip);
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  return Parse(host + ":" + std::to_string(port));
}

absl::StatusOr<SocketAddress> SocketAddress::Parse(std::string_view text) {
  std::string_view host;
  std::string_view port_text;
  bool v6 = false;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos) {
      return BadAddress(text, "missing ']'");
    }
    host = text.substr(1, close - 1);
    if (close + 1 >= text.size() || text[close + 1] != ':') {
      return BadAddress(text, "missing \":port\" after ']'");
    }
    port_text = text.substr(close + 2);
    v6 = true;
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      return BadAddress(text, "missing \":port\"");
    }
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      return BadAddress(text, "IPv6 addresses need brackets");
    }
  }
  uint16_t port;
  if (!ParsePort(port_text, &port)) {
    return BadAddress(text, "port must be a number from 0 to 65535");
  }
  // inet_pton needs a NUL-terminated copy; addresses are short.
  std::string host_z(host);
  SocketAddress out;
  if (v6) {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&out.storage_);
    if (::inet_pton(AF_INET6, host_z.c_str(), &sin6->sin6_addr) != 1) {
      return BadAddress(text, "not an IPv6 address");
    }
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(port);
    out.len_ = sizeof(sockaddr_in6);
  } else {
    auto* sin = reinterpret_cast<sockaddr_in*>(&out.storage_);
    if (::inet_pton(AF_INET, host_z.c_str(), &sin->sin_addr) != 1) {
      return BadAddress(text, "not an IPv4 address (names are not resolved)");
    }
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    out.len_ = sizeof(sockaddr_in);
  }
  return out;
}

absl::StatusOr<SocketAddress> SocketAddress::FromSockaddr(const sockaddr* sa,
                                                          socklen_t len) {
  SocketAddress out;
  if (sa->sa_family == AF_INET && len >= sizeof(sockaddr_in)) {
    out.len_ = sizeof(sockaddr_in);
  } else if (sa->sa_family == AF_INET6 && len >= sizeof(sockaddr_in6)) {
    out.len_ = sizeof(sockaddr_in6);
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "socket address family ", sa->sa_family, " is not IPv4 or IPv6"));
  }
  std::memcpy(&out.storage_, sa, out.len_);
  return out;
}

uint16_t SocketAddress::port() const {
  if (family() == AF_INET) {
    return ntohs(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_port);
  }
  if (family() == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_port);
  }
  return 0;
}

SocketAddress SocketAddress::WithPort(uint16_t port) const {
  SocketAddress out = *this;
  if (family() == AF_INET) {
    reinterpret_cast<sockaddr_in*>(&out.storage_)->sin_port = htons(port);
  } else if (family() == AF_INET6) {
    reinterpret_cast<sockaddr_in6*>(&out.storage_)->sin6_port = htons(port);
  }
  return out;
}

std::string SocketAddress::ToString() const {
  char buf[INET6_ADDRSTRLEN];
  if (family() == AF_INET) {
    const auto* sin = reinterpret_cast<const sockaddr_in*>(&storage_);
    ::inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof(buf));
    return absl::StrCat(buf, ":", port());
  }
  if (family() == AF_INET6) {
    const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&storage_);
    ::inet_ntop(AF_INET6, &sin6->sin6_addr, buf, sizeof(buf));
    return absl::StrCat("[", buf, "]:", port());
  }
  return "<unspecified>";
}

bool operator==(const SocketAddress& a, const SocketAddress& b) {
  if (a.len_ != b.len_ || a.family() != b.family()) return false;
  if (a.family() == AF_INET) {
    const auto* x = reinterpret_cast<const sockaddr_in*>(&a.storage_);
    const auto* y = reinterpret_cast<const sockaddr_in*>(&b.storage_);
    return x->sin_port == y->sin_port &&
           x->sin_addr.s_addr == y->sin_addr.s_addr;
  }
  if (a.family() == AF_INET6) {
    const auto* x = reinterpret_cast<const sockaddr_in6*>(&a.storage_);
    const auto* y = reinterpret_cast<const sockaddr_in6*>(&b.storage_);
    return x->sin6_port == y->sin6_port &&
           std::memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(in6_addr)) == 0;
  }
  return true;  // both unspecified
}

absl::Status SetNonBlocking(int fd) {
  int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) {
    return absl::ErrnoToStatus(errno,
                               absl::StrCat("set O_NONBLOCK on fd ", fd));
  }
  return absl::OkStatus();
}

namespace {

// A non-blocking, close-on-exec TCP socket for `addr`'s family, marked when
// `mark` is not 0 (before any bind or connect, so the mark governs both).
absl::StatusOr<UniqueFd> NewTcpSocket(const SocketAddress& addr, uint32_t mark,
                                      const std::string& where) {
  if (!addr.valid()) return absl::InvalidArgumentError(where + ": no address");
  UniqueFd fd(
      ::socket(addr.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return absl::ErrnoToStatus(errno, where + ": socket");
  if (mark != 0 &&
      ::setsockopt(fd.get(), SOL_SOCKET, SO_MARK, &mark, sizeof(mark)) != 0) {
    return absl::ErrnoToStatus(errno, where + ": SO_MARK");
  }
  return fd;
}

}  // namespace

absl::StatusOr<UniqueFd> ListenTcp(const SocketAddress& addr, int backlog,
                                   bool reuse_port, uint32_t mark) {
  const std::string where = absl::StrCat("listen on ", addr.ToString());
  absl::StatusOr<UniqueFd> made = NewTcpSocket(addr, mark, where);
  if (!made.ok()) return made.status();
  UniqueFd fd = std::move(*made);
  int one = 1;
  if (::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) !=
      0) {
    return absl::ErrnoToStatus(errno, where + ": SO_REUSEADDR");
  }
  if (reuse_port && ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEPORT, &one,
                                 sizeof(one)) != 0) {
    return absl::ErrnoToStatus(errno, where + ": SO_REUSEPORT");
  }
  if (::bind(fd.get(), addr.addr(), addr.addr_len()) != 0) {
    int err = errno;
    return absl::ErrnoToStatus(
        err, err == EADDRINUSE
                 ? where +
                       ": bind (another process holds the port; pick "
                       "another or stop it)"
                 : where + ": bind");
  }
  if (::listen(fd.get(), backlog) != 0) {
    return absl::ErrnoToStatus(errno, where + ": listen");
  }
  return fd;
}

absl::StatusOr<UniqueFd> ConnectTcp(const SocketAddress& addr, uint32_t mark,
                                    const SocketAddress* source) {
  const std::string where = absl::StrCat("connect to ", addr.ToString());
  absl::StatusOr<UniqueFd> made = NewTcpSocket(addr, mark, where);
  if (!made.ok()) return made.status();
  UniqueFd fd = std::move(*made);
  if (source != nullptr) {
    int one = 1;
    ::setsockopt(fd.get(), IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one,
                 sizeof(one));
    if (::bind(fd.get(), source->addr(), source->addr_len()) != 0)
      return absl::ErrnoToStatus(
          errno, absl::StrCat(where, " from ", source->ToString()));
  }
  if (::connect(fd.get(), addr.addr(), addr.addr_len()) != 0 &&
      errno != EINPROGRESS) {
    return absl::ErrnoToStatus(errno, where);
  }
  return fd;
}

absl::Status SocketError(int fd) {
  int err = 0;
  socklen_t len = sizeof(err);
  if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
  if (err == 0) return absl::OkStatus();
  std::string where = absl::StrCat("socket fd ", fd);
  if (absl::StatusOr<SocketAddress> peer = PeerAddress(fd); peer.ok()) {
    where = absl::StrCat("socket to ", peer->ToString());
  }
  return absl::ErrnoToStatus(err, where);
}

absl::StatusOr<UniqueFd> ListenUnix(const std::string& path, int backlog) {
  std::string tmp = absl::StrCat(path, ".new.", ::getpid());
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (tmp.size() >= sizeof(sa.sun_path))
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": too long for a Unix socket path"));
  std::memcpy(sa.sun_path, tmp.data(), tmp.size());
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return absl::ErrnoToStatus(errno, "socket(AF_UNIX)");
  ::unlink(tmp.c_str());
  // Created 0600 from the start: no window in which another user connects.
  mode_t old_mask = ::umask(0177);
  int rc = ::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa));
  int bind_errno = errno;
  ::umask(old_mask);
  if (rc != 0)
    return absl::ErrnoToStatus(bind_errno, absl::StrCat("bind ", tmp));
  if (::listen(fd.get(), backlog) != 0 ||
      ::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return absl::ErrnoToStatus(err, absl::StrCat("listen on ", path));
  }
  return fd;
}

absl::StatusOr<UniqueFd> Accept(int listen_fd, SocketAddress* peer) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  int fd = ::accept4(listen_fd, reinterpret_cast<sockaddr*>(&ss), &len,
                     SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (fd < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ECONNABORTED ||
        errno == EINTR) {
      return UniqueFd();
    }
    return absl::ErrnoToStatus(errno, absl::StrCat("accept on fd ", listen_fd));
  }
  UniqueFd out(fd);
  if (peer != nullptr) {
    absl::StatusOr<SocketAddress> a =
        SocketAddress::FromSockaddr(reinterpret_cast<sockaddr*>(&ss), len);
    *peer = a.ok() ? *a : SocketAddress();
  }
  return out;
}

absl::StatusOr<SocketAddress> LocalAddress(int fd) {
  return SockName(fd, /*peer=*/false);
}

absl::StatusOr<SocketAddress> PeerAddress(int fd) {
  return SockName(fd, /*peer=*/true);
}

}  // namespace nodemesh::net
