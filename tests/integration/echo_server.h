#pragma once

// An echo peer for tunnel tests (HTTP Upgrade, CONNECT, websockets over
// HTTP/2): a TCP server on its own thread in a test node's namespace.

#include <poll.h>
#include <sys/socket.h>

#include <atomic>
#include <random>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "tests/integration/fixtures.h"

namespace nodemesh::testing {

// `n` pseudo-random bytes, the same every call.
inline std::string Pattern(size_t n) {
  std::string s(n, '\0');
  std::mt19937 rng(42);
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

// A TCP server in the node's namespace on its own thread: accepts one
// connection at a time; optionally reads an HTTP head and answers `reply`
// first; then echoes until EOF and closes.
class EchoServer {
 public:
  EchoServer(const NetnsScope& ns, uint16_t port, std::string reply = "")
      : reply_(std::move(reply)) {
    {
      NetnsScope::Enter in(ns);
      listen_ = Listen(absl::StrCat("127.0.0.1:", port));
    }
    thread_ = std::thread([this] { Serve(); });
  }
  ~EchoServer() {
    stop_ = true;
    ::shutdown(listen_.get(), SHUT_RDWR);
    thread_.join();
  }
  std::string head() const { return head_; }
  int accepted() const { return accepted_; }

 private:
  void Serve() {
    while (!stop_) {
      pollfd p{listen_.get(), POLLIN, 0};
      if (::poll(&p, 1, 100) != 1) continue;
      net::UniqueFd c(::accept4(listen_.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (!c.valid()) continue;
      ++accepted_;
      std::string buf;
      char tmp[65536];
      if (!reply_.empty()) {
        while (buf.find("\r\n\r\n") == std::string::npos) {
          ssize_t n = ::recv(c.get(), tmp, sizeof(tmp), 0);
          if (n <= 0) break;
          buf.append(tmp, static_cast<size_t>(n));
        }
        size_t end = buf.find("\r\n\r\n");
        if (end == std::string::npos) continue;
        head_ = buf.substr(0, end);
        buf.erase(0, end + 4);
        WriteAll(c.get(), reply_.data(), reply_.size());
        if (!buf.empty()) WriteAll(c.get(), buf.data(), buf.size());
      }
      while (true) {
        ssize_t n = ::recv(c.get(), tmp, sizeof(tmp), 0);
        if (n <= 0) break;
        if (!WriteAll(c.get(), tmp, static_cast<size_t>(n))) break;
      }
    }
  }

  net::UniqueFd listen_;
  std::string reply_;
  std::string head_;
  std::atomic<int> accepted_{0};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace nodemesh::testing
