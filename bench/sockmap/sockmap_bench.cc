// 64-byte ping-pong round trips per second between two local TCP sockets:
// plain loopback (no datapath), the datapath with splicing off, and with
// sockops + sk_msg splicing on, interleaved in rounds so drift cancels.
// Client and server are pinned to different CPUs (or one, with --same_cpu).
//
//   build/bench/sockmap_bench [--seconds=3] [--rounds=3] [--same_cpu]

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/integration/fixtures.h"

namespace nodemesh::testing {
namespace {

constexpr size_t kMessage = 64;

void PinTo(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  sched_setaffinity(0, sizeof(set), &set);
}

// Round trips per second of one client against one echo server.
double Measure(const std::string& server_cgroup,
               const std::string& client_cgroup, int seconds, int server_cpu,
               int client_cpu) {
  const uint16_t port = PickPort();
  NetnsScope ns;
  int result_pipe[2];
  if (::pipe(result_pipe) != 0) return 0;
  ChildProcess server(server_cgroup, ns.fd(), [&] {
    PinTo(server_cpu);
    auto l = Listen(absl::StrCat("127.0.0.1:", port));
    ::write(result_pipe[1], "r", 1);  // listening
    net::UniqueFd c(::accept(l.get(), nullptr, nullptr));
    int one = 1;
    ::setsockopt(c.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    char buf[kMessage];
    while (ReadAll(c.get(), buf, kMessage))
      if (!WriteAll(c.get(), buf, kMessage)) break;
    return 0;
  });
  char ready;
  if (::read(result_pipe[0], &ready, 1) != 1) return 0;
  ChildProcess client(client_cgroup, ns.fd(), [&] {
    PinTo(client_cpu);
    auto fd = Connect(absl::StrCat("127.0.0.1:", port));
    if (!fd.valid()) return 1;
    int one = 1;
    ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    char buf[kMessage] = {};
    uint64_t trips = 0;
    auto end = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    while (std::chrono::steady_clock::now() < end) {
      for (int i = 0; i < 64; ++i) {
        if (!WriteAll(fd.get(), buf, kMessage) ||
            !ReadAll(fd.get(), buf, kMessage))
          return 2;
      }
      trips += 64;
    }
    ::write(result_pipe[1], &trips, sizeof(trips));
    return 0;
  });
  uint64_t trips = 0;
  bool ok = ::read(result_pipe[0], &trips, sizeof(trips)) == sizeof(trips);
  client.Wait(seconds * 1000 + 10000);
  ::close(result_pipe[0]);
  ::close(result_pipe[1]);
  return ok ? static_cast<double>(trips) / seconds : 0;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace
}  // namespace nodemesh::testing

int main(int argc, char** argv) {
  using namespace nodemesh::testing;
  int seconds = 3, rounds = 3;
  bool same_cpu = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--seconds=", 0) == 0) seconds = std::stoi(a.substr(10));
    if (a.rfind("--rounds=", 0) == 0) rounds = std::stoi(a.substr(9));
    if (a == "--same_cpu") same_cpu = true;
  }
  const int server_cpu = 0, client_cpu = same_cpu ? 0 : 1;
  std::vector<double> plain, off, spliced;
  for (int r = 0; r < rounds; ++r) {
    {
      CgroupScope a(Cgroup2Mount() + "/" + UniqueName("bench-plain-a"));
      CgroupScope b(Cgroup2Mount() + "/" + UniqueName("bench-plain-b"));
      plain.push_back(
          Measure(a.path(), b.path(), seconds, server_cpu, client_cpu));
    }
    for (bool on : {false, true}) {
      nm_config c{};
      c.outbound_port = PickPort();
      c.sockmap = on;
      c.agent_mark = NM_DEFAULT_AGENT_MARK;
      DatapathScope dp(c, false);
      std::string wl = dp.AddWorkload(1, 0);
      double rate =
          Measure(dp.agent().path(), wl, seconds, server_cpu, client_cpu);
      (on ? spliced : off).push_back(rate);
      if (on && dp.maps().ReadStats()->at(NM_STAT_MSG_REDIRECTS) == 0)
        fprintf(stderr, "warning: splicing on but no sk_msg redirects\n");
    }
    fprintf(stderr, "round %d: plain %.0f  datapath %.0f  spliced %.0f rt/s\n",
            r + 1, plain.back(), off.back(), spliced.back());
  }
  double p = Median(plain), o = Median(off), s = Median(spliced);
  printf("sockmap ping-pong, 64 B, %s, %d rounds x %d s (medians)\n",
         same_cpu ? "client and server on one CPU"
                  : "client and server on different CPUs",
         rounds, seconds);
  printf("  plain loopback TCP      %10.0f round trips/s  1.00x\n", p);
  printf("  datapath, splicing off  %10.0f round trips/s  %.2fx\n", o, o / p);
  printf("  datapath, spliced       %10.0f round trips/s  %.2fx\n", s, s / p);
  return 0;
}
