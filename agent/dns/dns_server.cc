#include "agent/dns/dns_server.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "agent/dns/dns_message.h"
#include "glog/logging.h"

namespace nodemesh::dns {
namespace {

constexpr size_t kMaxDatagram = 65536;
constexpr int kMaxPerWakeup = 64;
constexpr size_t kMaxPending = 4096;

absl::StatusOr<net::UniqueFd> UdpSocket(int family, uint32_t mark) {
  net::UniqueFd fd(
      ::socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return absl::ErrnoToStatus(errno, "socket(SOCK_DGRAM)");
  if (mark != 0 &&
      ::setsockopt(fd.get(), SOL_SOCKET, SO_MARK, &mark, sizeof(mark)) != 0)
    return absl::ErrnoToStatus(errno, "setsockopt(SO_MARK)");
  return fd;
}

}  // namespace

std::vector<net::SocketAddress> ResolvConfNameservers(const std::string& path) {
  std::vector<net::SocketAddress> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream words(line);
    std::string key, value;
    if (!(words >> key >> value) || key != "nameserver") continue;
    std::string text = value.find(':') != std::string::npos
                           ? absl::StrCat("[", value, "]:53")
                           : absl::StrCat(value, ":53");
    auto a = net::SocketAddress::Parse(text);
    if (a.ok()) out.push_back(*a);
  }
  return out;
}

DnsServer::DnsServer(net::EventLoop* loop, DnsServerOptions options)
    : loop_(loop),
      options_(std::move(options)),
      next_id_(static_cast<uint16_t>(std::random_device{}())),
      buf_(kMaxDatagram) {
  if (options_.upstreams.empty()) options_.upstreams = ResolvConfNameservers();
}

DnsServer::~DnsServer() {
  CloseAll();
  if (upstream_fd_.valid()) loop_->Remove(upstream_fd_.get());
  if (expire_timer_ != net::EventLoop::kInvalidTimer)
    loop_->CancelTimer(expire_timer_);
}

absl::StatusOr<net::UniqueFd> BindDnsSocket(const net::SocketAddress& addr,
                                            uint32_t mark) {
  auto fd = UdpSocket(addr.family(), mark);
  if (!fd.ok()) return fd.status();
  int one = 1;
  ::setsockopt(fd->get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (::setsockopt(fd->get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0)
    return absl::ErrnoToStatus(errno, "setsockopt(SO_REUSEPORT)");
  if (addr.family() == AF_INET6)
    ::setsockopt(fd->get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  if (::bind(fd->get(), addr.addr(), addr.addr_len()) != 0)
    return absl::ErrnoToStatus(errno,
                               absl::StrCat("dns: bind ", addr.ToString()));
  return fd;
}

absl::Status DnsServer::Listen(const net::SocketAddress& addr) {
  auto fd = BindDnsSocket(addr, options_.mark);
  if (!fd.ok()) return fd.status();
  return Adopt(std::move(*fd), addr.ToString());
}

absl::Status DnsServer::Adopt(net::UniqueFd fd, const std::string& tag) {
  int raw = fd.get();
  if (auto s =
          loop_->Add(raw, EPOLLIN, [this, raw](uint32_t) { OnQuery(raw); });
      !s.ok())
    return s;
  Close(tag);
  listeners_[tag] = std::move(fd);
  LOG(INFO) << "dns: serving on " << tag;
  return absl::OkStatus();
}

void DnsServer::Close(const std::string& tag) {
  auto it = listeners_.find(tag);
  if (it == listeners_.end()) return;
  ForgetQueriesFrom(it->second.get());
  loop_->Remove(it->second.get());
  listeners_.erase(it);
}

void DnsServer::CloseAll() {
  for (auto& [tag, fd] : listeners_) {
    ForgetQueriesFrom(fd.get());
    loop_->Remove(fd.get());
  }
  listeners_.clear();
}

void DnsServer::ForgetQueriesFrom(int fd) {
  // Their answers must not go out on whatever socket reuses the number.
  absl::erase_if(pending_, [fd](const auto& entry) {
    return entry.second.reply_fd == fd;
  });
}

void DnsServer::SetNames(absl::flat_hash_map<std::string, uint32_t> names) {
  names_ = std::move(names);
}

void DnsServer::OnQuery(int fd) {
  for (int i = 0; i < kMaxPerWakeup; ++i) {
    sockaddr_storage from{};
    socklen_t from_len = sizeof(from);
    ssize_t n = ::recvfrom(fd, buf_.data(), buf_.size(), 0,
                           reinterpret_cast<sockaddr*>(&from), &from_len);
    if (n < 0) return;  // EAGAIN, or an error the next datagram repeats
    ++stats_.queries;
    std::string_view query(buf_.data(), static_cast<size_t>(n));
    std::string reply;
    auto q = ParseQuery(query);
    if (!q) {
      ++stats_.malformed;
      reply = BuildError(query, kRcodeFormErr);
    } else if (auto it = names_.find(q->name); it != names_.end()) {
      ++stats_.mesh_answers;
      std::optional<uint32_t> a;
      if (q->type == kTypeA && q->qclass == kClassIn) a = it->second;
      // AAAA and other types of a mesh name: NODATA, so clients use the A.
      reply = BuildAnswer(query, *q, a, options_.ttl_seconds);
    } else {
      Forward(fd, from, from_len, query);
      continue;
    }
    if (!reply.empty())
      ::sendto(fd, reply.data(), reply.size(), MSG_DONTWAIT,
               reinterpret_cast<sockaddr*>(&from), from_len);
  }
}

absl::Status DnsServer::EnsureUpstreamSocket() {
  if (upstream_fd_.valid()) return absl::OkStatus();
  auto fd = UdpSocket(AF_INET6, options_.mark);
  if (!fd.ok()) return fd.status();
  int zero = 0;  // dual stack: v4 upstreams as v4-mapped
  ::setsockopt(fd->get(), IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
  if (auto s = loop_->Add(fd->get(), EPOLLIN,
                          [this](uint32_t) { OnUpstreamAnswer(); });
      !s.ok())
    return s;
  upstream_fd_ = std::move(*fd);
  return absl::OkStatus();
}

void DnsServer::Forward(int fd, const sockaddr_storage& from,
                        socklen_t from_len, std::string_view query) {
  auto fail = [&] {
    ++stats_.forward_errors;
    std::string reply = BuildError(query, kRcodeServFail);
    ::sendto(fd, reply.data(), reply.size(), MSG_DONTWAIT,
             reinterpret_cast<const sockaddr*>(&from), from_len);
  };
  if (options_.upstreams.empty() || pending_.size() >= kMaxPending ||
      !EnsureUpstreamSocket().ok())
    return fail();
  uint16_t id = next_id_++;
  while (pending_.count(id)) id = next_id_++;
  std::string out(query);
  out[0] = static_cast<char>(id >> 8);
  out[1] = static_cast<char>(id & 0xff);
  const net::SocketAddress& up =
      options_.upstreams[next_upstream_++ % options_.upstreams.size()];
  sockaddr_in6 target{};
  socklen_t target_len = sizeof(target);
  if (up.family() == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(up.addr());
    target.sin6_family = AF_INET6;
    target.sin6_port = v4->sin_port;
    target.sin6_addr.s6_addr[10] = 0xff;
    target.sin6_addr.s6_addr[11] = 0xff;
    std::memcpy(&target.sin6_addr.s6_addr[12], &v4->sin_addr, 4);
  } else {
    std::memcpy(&target, up.addr(), sizeof(target));
  }
  if (::sendto(upstream_fd_.get(), out.data(), out.size(), MSG_DONTWAIT,
               reinterpret_cast<sockaddr*>(&target), target_len) < 0)
    return fail();
  ++stats_.forwarded;
  Pending p{fd, from, from_len,
            static_cast<uint16_t>(static_cast<uint8_t>(query[0]) << 8 |
                                  static_cast<uint8_t>(query[1])),
            std::chrono::steady_clock::now() + options_.upstream_timeout};
  pending_[id] = p;
  if (expire_timer_ == net::EventLoop::kInvalidTimer)
    expire_timer_ =
        loop_->AddTimer(std::chrono::milliseconds(1000), [this] { Expire(); });
}

void DnsServer::OnUpstreamAnswer() {
  for (int i = 0; i < kMaxPerWakeup; ++i) {
    ssize_t n = ::recv(upstream_fd_.get(), buf_.data(), buf_.size(), 0);
    if (n < 12) {
      if (n < 0) return;
      continue;
    }
    uint16_t id = static_cast<uint16_t>(static_cast<uint8_t>(buf_[0]) << 8 |
                                        static_cast<uint8_t>(buf_[1]));
    auto it = pending_.find(id);
    if (it == pending_.end()) continue;  // late, or not ours
    const Pending& p = it->second;
    buf_[0] = static_cast<char>(p.client_id >> 8);
    buf_[1] = static_cast<char>(p.client_id & 0xff);
    ::sendto(p.reply_fd, buf_.data(), static_cast<size_t>(n), MSG_DONTWAIT,
             reinterpret_cast<const sockaddr*>(&p.client), p.client_len);
    pending_.erase(it);
  }
}

void DnsServer::Expire() {
  expire_timer_ = net::EventLoop::kInvalidTimer;
  auto now = std::chrono::steady_clock::now();
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (it->second.deadline <= now) {
      ++stats_.forward_errors;  // the client's own retry takes over
      pending_.erase(it++);
    } else {
      ++it;
    }
  }
  if (!pending_.empty())
    expire_timer_ =
        loop_->AddTimer(std::chrono::milliseconds(1000), [this] { Expire(); });
}

}  // namespace nodemesh::dns
