#include "ctl/admin_client.h"

#include <poll.h>
#include <sys/socket.h>
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

}  // namespace

absl::StatusOr<AdminReply> Get(const std::string& agent_url,
                               const std::string& path) {
  std::string hostport = agent_url;
  if (absl::StartsWith(hostport, "http://")) hostport = hostport.substr(7);
  while (!hostport.empty() && hostport.back() == '/') hostport.pop_back();
  auto addr = net::SocketAddress::Parse(hostport);
  if (!addr.ok())
    return absl::InvalidArgumentError(
        absl::StrCat("--agent=", agent_url, ": ", addr.status().message()));
  auto fd = net::ConnectTcp(*addr);
  if (!fd.ok()) return fd.status();
  constexpr int kTimeoutMs = 5000;
  if (!WaitFor(fd->get(), POLLOUT, kTimeoutMs) ||
      !net::SocketError(fd->get()).ok())
    return absl::UnavailableError(
        absl::StrCat("no agent answers at ", agent_url, " (is it running?)"));
  std::string request =
      absl::StrCat("GET ", path, " HTTP/1.1\r\nHost: ", hostport,
                   "\r\nConnection: close\r\n\r\n");
  if (::send(fd->get(), request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size()))
    return absl::UnavailableError("sending to the agent failed");

  AdminReply reply;
  ReplyCollector collector(&reply);
  http::Http1Parser parser(http::Http1Parser::Mode::kResponse, &collector);
  parser.ExpectResponseTo("GET");
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
