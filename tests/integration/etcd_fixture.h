#pragma once

// A real etcd (Debian's etcd-server 3.4, /usr/bin/etcd) for multi-node
// tests: one member, a child process of the test inside a given network
// namespace, on a given IP with its own client and peer ports, its data and
// its log in a fresh /tmp/nmtest-<pid>-<n>-etcd directory that the object
// owns. Clients (curl, etcdctl) run inside the same namespace with
// `nsenter --net=`. The destructor kills etcd and removes the directory,
// also when a test failed midway; a test binary that dies takes etcd with
// it (PR_SET_PDEATHSIG).

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>

namespace nodemesh::testing {

class EtcdServer {
 public:
  struct Options {
    // The network namespace etcd and its clients run in: a path
    // (NetnsScope::path(), /run/netns/NAME) or a NetnsScope's fd, which
    // must stay open while this object lives. Neither: the root namespace,
    // where `ip` must be in 127.0.0.0/8 (Start() refuses anything else: the
    // root namespace's other addresses reach beyond the machine).
    std::string netns_path;
    int netns_fd = -1;
    std::string ip = "127.0.0.1";
    // 0: a random port (PickPort()), never etcd's default 2379/2380.
    uint16_t client_port = 0;
    uint16_t peer_port = 0;
    std::string name = "nmtest";  // --name, and the single --initial-cluster
  };

  // Makes the directory; etcd starts with Start().
  explicit EtcdServer(Options options);
  ~EtcdServer();
  EtcdServer(const EtcdServer&) = delete;
  EtcdServer& operator=(const EtcdServer&) = delete;

  // Starts etcd (on the data dir as it is: empty the first time, as left
  // by Stop() or Kill() after that) and waits until GET /health answers
  // {"health":"true"} from inside the namespace. False, with a test
  // failure quoting the log's tail, when it exits or is not healthy within
  // `timeout_ms` (it is killed then). True at once when already running.
  bool Start(int timeout_ms = 20000);
  // SIGTERM, then waits for it to exit (SIGKILL after `timeout_ms`, with a
  // test failure). True when it exited on SIGTERM or was not running.
  bool Stop(int timeout_ms = 10000);
  // SIGKILL, then waits for it to exit.
  void Kill();
  // Stop(), then Start() on the same data dir, ports and address: every
  // key written before is still there.
  bool Restart();
  bool running() const;
  pid_t pid() const { return pid_; }

  // "http://IP:CLIENT_PORT", what --endpoints and agents take.
  std::string endpoint() const;
  const std::string& ip() const { return options_.ip; }
  uint16_t client_port() const { return options_.client_port; }
  uint16_t peer_port() const { return options_.peer_port; }
  // The directory this object owns, etcd's --data-dir inside it, and its
  // log (stdout and stderr of every start, appended).
  const std::string& dir() const { return dir_; }
  std::string data_dir() const { return dir_ + "/data"; }
  std::string log_path() const { return dir_ + "/etcd.log"; }
  // The last `lines` lines of the log, for failure messages.
  std::string LogTail(int lines = 40) const;

  // `sh -c command` inside etcd's namespace; its stdout.
  std::string Run(const std::string& command, int* exit_code = nullptr) const;
  // `ETCDCTL_API=3 etcdctl --endpoints=<endpoint()> ARGS` inside etcd's
  // namespace, `args` as sh words (ShellQuote() a value that needs it),
  // e.g. Etcdctl("get --prefix --keys-only /nodemesh/model/", &rc); its
  // stdout. etcdctl's stderr goes to the test's.
  std::string Etcdctl(const std::string& args, int* exit_code = nullptr) const;
  // GET /health answers {"health":"true"} (curl inside the namespace).
  bool Healthy() const;

  // Through etcdctl; a failed command is a test failure with the log's
  // tail. Put: true when etcd said OK.
  bool Put(const std::string& key, const std::string& value) const;
  // The value of `key`; nullopt when absent (or etcdctl failed).
  std::optional<std::string> Get(const std::string& key) const;
  // Every key under `prefix` and its value.
  std::map<std::string, std::string> GetPrefix(const std::string& prefix) const;
  // The number of keys deleted (0 or 1); -1 when etcdctl failed.
  int Delete(const std::string& key) const;

 private:
  std::map<std::string, std::string> Range(const std::string& key,
                                           bool prefix) const;
  // Reaps a child that exited on its own (pid_ = -1).
  void Reap();

  Options options_;
  std::string dir_;
  pid_t pid_ = -1;
};

}  // namespace nodemesh::testing
