#include "agent/admin/admin_server.h"

#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <deque>
#include <future>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "agent/http/http1_parser.h"
#include "gtest/gtest.h"

namespace nodemesh::admin {
namespace {

using http::Http1Parser;

struct Response {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;

  std::string Header(std::string_view name) const {
    for (const auto& [n, v] : headers) {
      if (http::EqualsIgnoreCase(n, name)) return v;
    }
    return "";
  }
};

// A blocking loopback client that reads responses with the same codec.
class Client : public http::Http1Visitor {
 public:
  explicit Client(uint16_t port) : parser_(Http1Parser::Mode::kResponse, this) {
    fd_.Reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    timeval tv{5, 0};  // a broken server fails the test instead of hanging
    ::setsockopt(fd_.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_.get(), reinterpret_cast<sockaddr*>(&sin),
                           sizeof(sin)) == 0;
    connect_errno_ = connected_ ? 0 : errno;
  }

  bool connected() const { return connected_; }
  int connect_errno() const { return connect_errno_; }

  void Send(std::string_view data) {
    while (!data.empty()) {
      ssize_t n = ::send(fd_.get(), data.data(), data.size(), MSG_NOSIGNAL);
      ASSERT_GT(n, 0) << strerror(errno);
      data.remove_prefix(static_cast<size_t>(n));
    }
  }
  void ShutdownWrite() { ::shutdown(fd_.get(), SHUT_WR); }
  void Close() { fd_.Reset(); }

  // The next complete response, or nullopt on EOF/timeout/parse error.
  std::optional<Response> Read(std::string_view method = "GET") {
    parser_.ExpectResponseTo(method);
    while (done_.empty() && !eof_) {
      char buf[16384];
      ssize_t n = ::recv(fd_.get(), buf, sizeof(buf), 0);
      if (n <= 0) {
        eof_ = true;
        if (n == 0) parser_.FeedEof();
        break;
      }
      EXPECT_EQ(parser_.Feed(std::string_view(buf, n)), static_cast<size_t>(n))
          << parser_.status();
    }
    if (done_.empty()) return std::nullopt;
    Response r = std::move(done_.front());
    done_.pop_front();
    return r;
  }

  // True if the server closes the connection (not just goes quiet).
  bool ReadsEof() {
    if (eof_) return true;
    char buf[256];
    while (true) {
      ssize_t n = ::recv(fd_.get(), buf, sizeof(buf), 0);
      if (n == 0) return true;
      if (n < 0) return errno == ECONNRESET;
    }
  }

  void OnHeaders(const http::MessageHead& h) override {
    current_ = Response();
    current_.status = h.status_code;
    for (const http::HeaderField& f : h.headers) {
      current_.headers.emplace_back(f.name, f.value);
    }
  }
  void OnBody(std::string_view d) override { current_.body.append(d); }
  void OnMessageComplete() override { done_.push_back(std::move(current_)); }

 private:
  net::UniqueFd fd_;
  bool connected_ = false;
  int connect_errno_ = 0;
  bool eof_ = false;
  Http1Parser parser_;
  Response current_;
  std::deque<Response> done_;
};

std::string Get(std::string_view path, std::string_view extra = "") {
  return "GET " + std::string(path) + " HTTP/1.1\r\nHost: admin\r\n" +
         std::string(extra) + "\r\n";
}

class AdminServerTest : public ::testing::Test {
 protected:
  void StartServer(AdminServerOptions options = {}) {
    auto loop = net::EventLoop::Create();
    ASSERT_TRUE(loop.ok()) << loop.status();
    loop_ = std::move(*loop);
    server_ = std::make_unique<AdminServer>(loop_.get(), options);
    server_->Handle("GET", "/healthz", [](const AdminRequest&) {
      return AdminResponse{200, "text/plain", "ok\n"};
    });
    server_->Handle("POST", "/echo", [](const AdminRequest& r) {
      return AdminResponse{200, "text/plain",
                           std::string(r.method) + " " + std::string(r.path) +
                               "?" + std::string(r.query) + " x=" +
                               std::string(r.Header("X-Test").value_or("-")) +
                               " " + std::string(r.body)};
    });
    server_->Handle("GET", "/throw", [](const AdminRequest&) -> AdminResponse {
      throw std::runtime_error("boom");
    });
    server_->Handle("GET", "/big", [](const AdminRequest& r) {
      size_t n = r.query.empty() ? 8 << 20 : std::stoul(std::string(r.query));
      return AdminResponse{200, "application/octet-stream",
                           std::string(n, 'b')};
    });
    server_->Handle("POST", "/drain", [this](const AdminRequest&) {
      server_->StopAccepting();  // from inside a handler
      return AdminResponse{200, "application/json", "{}"};
    });
    server_->HandlePrefix("/api/", [](const AdminRequest& r) {
      AdminResponse resp{201, "application/json", "{}"};
      resp.headers.emplace_back("x-amzn-ErrorType", "Test");
      resp.headers.emplace_back(
          "x-path", std::string(r.method) + " " + std::string(r.path));
      return resp;
    });
    server_->HandlePrefix("/api/v2/", [](const AdminRequest&) {
      return AdminResponse{200, "text/plain", "v2"};
    });
    server_->Handle("GET", "/api/exact", [](const AdminRequest&) {
      return AdminResponse{200, "text/plain", "exact"};
    });
    absl::Status st =
        server_->Listen(*net::SocketAddress::Parse("127.0.0.1:0"));
    ASSERT_TRUE(st.ok()) << st;
    port_ = server_->bound_port();
    ASSERT_NE(port_, 0);
    runner_ = std::thread([this] { loop_->Run(); });
  }

  void TearDown() override {
    if (!loop_) return;
    OnLoop([this] { server_.reset(); });
    loop_->Stop();
    runner_.join();
  }

  // Runs fn on the loop thread and waits for it.
  template <typename Fn>
  auto OnLoop(Fn fn) -> decltype(fn()) {
    std::packaged_task<decltype(fn())()> task(std::move(fn));
    auto result = task.get_future();
    loop_->Post([&task] { task(); });
    return result.get();
  }

  size_t OpenConnections() {
    return OnLoop([this] { return server_->open_connections(); });
  }

  // Closing is asynchronous (the server lingers for the peer's FIN).
  bool WaitForOpenConnections(size_t n) {
    for (int i = 0; i < 500; ++i) {
      if (OpenConnections() == n) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }

  std::unique_ptr<net::EventLoop> loop_;
  std::unique_ptr<AdminServer> server_;
  std::thread runner_;
  uint16_t port_ = 0;
};

TEST_F(AdminServerTest, GetHealthz) {
  StartServer();
  Client c(port_);
  ASSERT_TRUE(c.connected());
  c.Send(Get("/healthz"));
  std::optional<Response> r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "ok\n");
  EXPECT_EQ(r->Header("content-type"), "text/plain");
  EXPECT_EQ(r->Header("content-length"), "3");
  EXPECT_EQ(r->Header("connection"), "");
}

TEST_F(AdminServerTest, KeepAliveServesTwoRequestsOnOneConnection) {
  StartServer();
  Client c(port_);
  c.Send(Get("/healthz"));
  ASSERT_EQ(c.Read()->status, 200);
  EXPECT_EQ(OpenConnections(), 1u);
  c.Send(
      "POST /echo?q=1 HTTP/1.1\r\nHost: a\r\nX-Test: yes\r\n"
      "Content-Length: 5\r\n\r\nhello");
  std::optional<Response> r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "POST /echo?q=1 x=yes hello");
  EXPECT_EQ(OpenConnections(), 1u);
}

TEST_F(AdminServerTest, PipelinedRequestsAnsweredInOrder) {
  StartServer();
  Client c(port_);
  c.Send("POST /echo?1 HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\na" +
         Get("/healthz") +
         "POST /echo?3 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
         "\r\n1\r\nc\r\n0\r\n\r\n");
  EXPECT_EQ(c.Read()->body, "POST /echo?1 x=- a");
  EXPECT_EQ(c.Read()->body, "ok\n");
  EXPECT_EQ(c.Read()->body, "POST /echo?3 x=- c");
}

TEST_F(AdminServerTest, UnknownPathIs404Json) {
  StartServer();
  Client c(port_);
  c.Send(Get("/nope\"x"));
  std::optional<Response> r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
  EXPECT_EQ(r->Header("content-type"), "application/json");
  EXPECT_EQ(r->body, "{\"error\":\"no admin endpoint at /nope\\\"x\"}");
  c.Send(Get("/healthz"));  // still open
  EXPECT_EQ(c.Read()->status, 200);
}

TEST_F(AdminServerTest, WrongMethodIs405WithAllow) {
  StartServer();
  Client c(port_);
  c.Send("DELETE /healthz HTTP/1.1\r\nHost: a\r\n\r\n");
  std::optional<Response> r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 405);
  EXPECT_EQ(r->Header("allow"), "GET");
  EXPECT_NE(r->body.find("DELETE not allowed on /healthz"), std::string::npos);
}

TEST_F(AdminServerTest, PrefixRouteGetsEveryMethodAndExtraHeaders) {
  StartServer();
  Client c(port_);
  c.Send("DELETE /api/meshes/shop?x=1 HTTP/1.1\r\nHost: a\r\n\r\n");
  std::optional<Response> r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 201);
  EXPECT_EQ(r->Header("x-amzn-ErrorType"), "Test");
  EXPECT_EQ(r->Header("x-path"), "DELETE /api/meshes/shop");
  EXPECT_EQ(r->Header("content-type"), "application/json");
}

TEST_F(AdminServerTest, LongestPrefixWinsAndExactRoutesComeFirst) {
  StartServer();
  Client c(port_);
  c.Send(Get("/api/v2/x"));
  std::optional<Response> r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "v2");
  c.Send(Get("/api/exact"));
  r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "exact");
  c.Send(Get("/apix"));
  r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
}

TEST_F(AdminServerTest, HeadIsServedByGetWithoutBody) {
  StartServer();
  Client c(port_);
  c.Send("HEAD /healthz HTTP/1.1\r\nHost: a\r\n\r\n" + Get("/healthz"));
  std::optional<Response> head = c.Read("HEAD");
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 200);
  EXPECT_EQ(head->Header("content-length"), "3");
  EXPECT_EQ(head->body, "");
  EXPECT_EQ(c.Read()->body, "ok\n");
}

TEST_F(AdminServerTest, MalformedRequestGets400AndClose) {
  StartServer();
  for (const std::string& bad :
       {std::string("GARBAGE\r\n\r\n"),
        std::string("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n"
                    "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" +
                    Get("/healthz")),
        std::string("GET /healthz HTTP/1.1\r\nHost : a\r\n\r\n")}) {
    SCOPED_TRACE(bad);
    Client c(port_);
    c.Send(bad);
    std::optional<Response> r = c.Read();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400);
    EXPECT_EQ(r->Header("connection"), "close");
    EXPECT_NE(r->body.find("\"error\""), std::string::npos);
    EXPECT_TRUE(c.ReadsEof());
  }
  Client after(port_);  // the server itself is unaffected
  after.Send(Get("/healthz"));
  EXPECT_EQ(after.Read()->status, 200);
}

TEST_F(AdminServerTest, OversizedHeadersGet431) {
  StartServer();
  Client c(port_);
  c.Send(Get("/healthz",
             "X-Big: " + std::string(size_t{70} * 1024, 'a') + "\r\n"));
  std::optional<Response> r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 431);
  EXPECT_TRUE(c.ReadsEof());
}

TEST_F(AdminServerTest, BodyOverLimitGets413) {
  StartServer();
  {
    Client c(port_);  // announced length: rejected before the body is sent
    c.Send("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 2000000\r\n\r\n");
    std::optional<Response> r = c.Read();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 413);
    EXPECT_EQ(r->Header("connection"), "close");
  }
  {
    Client c(port_);  // chunked: rejected once the limit is crossed
    c.Send(
        "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
        "\r\n");
    std::string chunk = "10000\r\n" + std::string(0x10000, 'z') + "\r\n";
    for (int i = 0; i < 17; ++i) c.Send(chunk);
    std::optional<Response> r = c.Read();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 413);
  }
  {
    Client c(port_);  // exactly at the limit is fine
    c.Send("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 1048576\r\n\r\n" +
           std::string(1 << 20, 'k'));
    std::optional<Response> r = c.Read();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body.size(), (1u << 20) + 16);  // + "POST /echo? x=- "
  }
}

TEST_F(AdminServerTest, ExpectContinueGetsInterimResponse) {
  StartServer();
  Client c(port_);
  c.Send(
      "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n"
      "Expect: 100-continue\r\n\r\n");
  std::optional<Response> interim = c.Read();
  ASSERT_TRUE(interim);
  EXPECT_EQ(interim->status, 100);
  c.Send("data");
  std::optional<Response> r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "POST /echo? x=- data");
}

TEST_F(AdminServerTest, Http10WithoutKeepAliveCloses) {
  StartServer();
  Client c(port_);
  c.Send("GET /healthz HTTP/1.0\r\n\r\n");
  std::optional<Response> r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->Header("connection"), "close");
  EXPECT_TRUE(c.ReadsEof());
}

TEST_F(AdminServerTest, HalfClosedClientStillGetsItsResponse) {
  StartServer();
  Client c(port_);
  c.Send(Get("/healthz"));
  c.ShutdownWrite();
  std::optional<Response> r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_TRUE(c.ReadsEof());
}

TEST_F(AdminServerTest, ThrowingHandlerGets500AndServerLives) {
  StartServer();
  Client c(port_);
  c.Send(Get("/throw") + Get("/healthz"));
  EXPECT_EQ(c.Read()->status, 500);
  EXPECT_EQ(c.Read()->status, 200);
}

TEST_F(AdminServerTest, LargeResponseIsWrittenCompletely) {
  StartServer();
  Client c(port_);
  c.Send(Get("/big"));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // fill buffers
  std::optional<Response> r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body.size(), 8u << 20);
  c.Send(Get("/healthz"));
  EXPECT_EQ(c.Read()->status, 200);
}

TEST_F(AdminServerTest, PipelinedFloodIsThrottledNotDropped) {
  AdminServerOptions options;
  options.max_pending_output = size_t{128} * 1024;
  StartServer(options);
  Client c(port_);
  std::string burst;
  constexpr int kRequests = 200;
  for (int i = 0; i < kRequests; ++i) burst += Get("/big?65536");
  c.Send(burst);
  for (int i = 0; i < kRequests; ++i) {
    std::optional<Response> r = c.Read();
    ASSERT_TRUE(r) << "response " << i;
    ASSERT_EQ(r->body.size(), 65536u) << "response " << i;
  }
}

TEST_F(AdminServerTest, StopAcceptingClosesIdleConnectionsAndListener) {
  StartServer();
  Client idle(port_);
  idle.Send(Get("/healthz"));
  ASSERT_EQ(idle.Read()->status, 200);
  Client fresh(port_);  // connected, never sent anything
  ASSERT_TRUE(fresh.connected());
  ASSERT_TRUE(WaitForOpenConnections(2));

  OnLoop([this] { server_->StopAccepting(); });
  EXPECT_EQ(OpenConnections(), 0u);
  EXPECT_TRUE(idle.ReadsEof());
  EXPECT_TRUE(fresh.ReadsEof());
  Client late(port_);
  EXPECT_FALSE(late.connected());
  EXPECT_EQ(late.connect_errno(), ECONNREFUSED);
}

TEST_F(AdminServerTest, StopAcceptingFinishesRequestInFlight) {
  StartServer();
  Client c(port_);
  // The interim 100 proves the server is mid-request when draining starts.
  c.Send(
      "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n"
      "Expect: 100-continue\r\n\r\n");
  ASSERT_EQ(c.Read()->status, 100);
  OnLoop([this] { server_->StopAccepting(); });
  EXPECT_EQ(OpenConnections(), 1u);
  c.Send("abcd");
  std::optional<Response> r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "POST /echo? x=- abcd");
  EXPECT_EQ(r->Header("connection"), "close");
  EXPECT_TRUE(c.ReadsEof());
  c.Close();
  EXPECT_TRUE(WaitForOpenConnections(0));
}

TEST_F(AdminServerTest, StopAcceptingFromInsideAHandler) {
  StartServer();
  Client other(port_);
  other.Send(Get("/healthz"));
  ASSERT_EQ(other.Read()->status, 200);
  Client c(port_);
  c.Send("POST /drain HTTP/1.1\r\nHost: a\r\n\r\n");
  std::optional<Response> r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->Header("connection"), "close");
  EXPECT_TRUE(c.ReadsEof());
  EXPECT_TRUE(other.ReadsEof());
}

TEST_F(AdminServerTest, IdleTimeoutClosesConnection) {
  AdminServerOptions options;
  options.idle_timeout = std::chrono::milliseconds(100);
  StartServer(options);
  Client c(port_);
  c.Send(Get("/healthz"));
  ASSERT_EQ(c.Read()->status, 200);
  EXPECT_TRUE(c.ReadsEof());
  EXPECT_EQ(OpenConnections(), 0u);
}

TEST_F(AdminServerTest, SecondServerCanShareThePort) {
  StartServer();
  absl::Status st = OnLoop([this] {
    AdminServer second(loop_.get());
    return second.Listen(
        *net::SocketAddress::Parse("127.0.0.1:" + std::to_string(port_)));
  });
  EXPECT_TRUE(st.ok()) << st;
}

TEST_F(AdminServerTest, ListenTwiceFails) {
  StartServer();
  absl::Status st = OnLoop([this] {
    return server_->Listen(*net::SocketAddress::Parse("127.0.0.1:0"));
  });
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace nodemesh::admin
