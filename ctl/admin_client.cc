#include "ctl/admin_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "agent/http/http1_parser.h"
#include "agent/net/socket.h"

namespace nodemesh::ctl {
namespace {

class ReplyCollector : public http::Http1Visitor {
 public:
  explicit ReplyCollector(AdminReply* reply) : reply_(reply) {}
  void OnHeaders(const http::MessageHead& head) override {
    reply_->status = head.status_code;
  }
  void OnBody(std::string_view data) override { reply_->body.append(data); }
  void OnMessageComplete() override { done = true; }
  bool done = false;

 private:
  AdminReply* reply_;
};

bool WaitFor(int fd, short events, int timeout_ms) {
  pollfd p{fd, events, 0};
  return ::poll(&p, 1, timeout_ms) == 1;
}

// Connects (non-blocking) to a TCP admin address or a Unix socket.
absl::StatusOr<net::UniqueFd> Connect(const std::string& agent,
                                      std::string* host) {
  if (absl::StartsWith(agent, "unix:")) {
    std::string path = agent.substr(5);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    if (path.size() >= sizeof(sa.sun_path))
      return absl::InvalidArgumentError(path + ": path too long");
    std::memcpy(sa.sun_path, path.data(), path.size());
    net::UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd.valid()) return absl::ErrnoToStatus(errno, "socket(AF_UNIX)");
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0)
      return absl::UnavailableError(absl::StrCat(
          "cannot reach the agent's socket ", path, ": ", std::strerror(errno),
          errno == EACCES ? " (root only)" : " (is the agent running?)"));
    *host = "localhost";
    return fd;
  }
  std::string hostport = agent;
  if (absl::StartsWith(hostport, "http://")) hostport = hostport.substr(7);
  while (!hostport.empty() && hostport.back() == '/') hostport.pop_back();
  auto addr = net::SocketAddress::Parse(hostport);
  if (!addr.ok())
    return absl::InvalidArgumentError(
        absl::StrCat("--agent=", agent, ": ", addr.status().message()));
  auto fd = net::ConnectTcp(*addr);
  if (!fd.ok()) return fd.status();
  if (!WaitFor(fd->get(), POLLOUT, 5000) || !net::SocketError(fd->get()).ok())
    return absl::UnavailableError(
        absl::StrCat("no agent answers at ", agent, " (is it running?)"));
  *host = hostport;
  return fd;
}

}  // namespace

absl::StatusOr<AdminReply> Call(const std::string& agent,
                                const std::string& method,
                                const std::string& path,
                                const std::string& body) {
  std::string hostport;
  auto fd = Connect(agent, &hostport);
  if (!fd.ok()) return fd.status();
  constexpr int kTimeoutMs = 5000;
  std::string request =
      absl::StrCat(method, " ", path, " HTTP/1.1\r\nHost: ", hostport,
                   "\r\nConnection: close\r\nContent-Type: application/json\r\n"
                   "Content-Length: ",
                   body.size(), "\r\n\r\n", body);
  if (::send(fd->get(), request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size()))
    return absl::UnavailableError("sending to the agent failed");

  AdminReply reply;
  ReplyCollector collector(&reply);
  http::Http1Parser parser(http::Http1Parser::Mode::kResponse, &collector);
  parser.ExpectResponseTo(method);
  char buf[16384];
  while (!collector.done && !parser.has_error()) {
    if (!WaitFor(fd->get(), POLLIN, kTimeoutMs))
      return absl::DeadlineExceededError("the agent did not answer in time");
    ssize_t n = ::recv(fd->get(), buf, sizeof(buf), 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (n <= 0) {
      parser.FeedEof();
      break;
    }
    parser.Feed(std::string_view(buf, n));
  }
  if (parser.has_error()) return parser.status();
  if (!collector.done)
    return absl::UnavailableError("the agent closed the connection early");
  return reply;
}

}  // namespace nodemesh::ctl
