// A cluster beyond one machine: three nodes (network namespaces on a
// bridge) whose agents share the mesh model and the workload registry
// through a real etcd (Debian's etcd-server, in the fabric namespace).
// Resources created with the real AWS CLI on one node steer traffic on
// another; a crashed agent's endpoints leave with its lease; a restarted
// one keeps them; --cleanup removes them at once; etcd going away for 30 s
// fails no request and loses no resource; a watch that missed a compaction
// lists again; concurrent API writes on two nodes never lose an update.

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "tests/integration/cluster_fixture.h"

namespace nodemesh::testing {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

json Mesh() { return {{"meshName", "m"}, {"spec", json::object()}}; }

using appmesh::RegistryNode;

// front calls back.m.local, served by virtual node back.
json FrontBackModel() {
  return json::array({Mesh(), RegistryNode("front", 8080, {"back.m.local"}),
                      RegistryNode("back", 9000),
                      appmesh::ServiceByNode("back.m.local", "back")});
}

double Seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

// Polls `done` every 50 ms until it holds or `limit` passed; how long it
// took, or nullopt.
std::optional<double> Within(std::chrono::milliseconds limit,
                             const std::function<bool()>& done) {
  auto start = Clock::now();
  for (;;) {
    if (done()) return Seconds(Clock::now() - start);
    if (Clock::now() - start > limit) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

// The real AWS CLI against node k's App Mesh API, from inside node k, with
// a configuration of its own (nothing of the machine's leaks in).
class AwsCli {
 public:
  AwsCli() : home_("/tmp/" + UniqueName("aws-home")) {
    std::filesystem::create_directories(home_);
  }
  ~AwsCli() { std::filesystem::remove_all(home_); }

  std::string Command(const ClusterScope& cluster, int k,
                      const std::string& args) const {
    return absl::StrCat("env -i HOME=", home_,
                        " PATH=/usr/bin:/bin AWS_EC2_METADATA_DISABLED=true "
                        "AWS_MAX_ATTEMPTS=1 /usr/bin/aws appmesh ",
                        args, " --endpoint-url http://",
                        cluster.Node(k).admin(),
                        " --region us-west-2 --no-sign-request --output json");
  }
  std::string Run(const ClusterScope& cluster, int k, const std::string& args,
                  int* rc = nullptr) const {
    return cluster.Node(k).Run(Command(cluster, k, args) + " 2>&1", rc);
  }

 private:
  std::string home_;
};

// A JSON argument for the shell: single-quoted.
std::string Q(const json& j) { return "'" + j.dump() + "'"; }

// Calls from a `front` workload on node k, one after another, until
// Stop(): each line of the log is "<status> <body>".
class CallLoop {
 public:
  CallLoop(const ClusterScope& cluster, int k, const std::string& url)
      : dir_("/tmp/" + UniqueName("calls")) {
    std::filesystem::create_directories(dir_);
    std::string loop = absl::StrCat(
        "while [ ! -e ", dir_, "/stop ]; do c=$(curl -s --max-time 10 -o ",
        dir_, "/body -w %{http_code} ", url, "); echo \"$c $(cat ", dir_,
        "/body 2>/dev/null)\" >> ", dir_, "/log; rm -f ", dir_,
        "/body; done; touch ", dir_, "/done");
    std::string quoted = "'";
    for (char c : loop)
      quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
    quoted += "'";
    cluster.Node(k).Run(
        absl::StrCat("setsid ", NODEMESH_CTL_BIN,
                     " run --admin_socket=", cluster.Node(k).admin_socket(),
                     " --mesh=m --virtual-node=front -- sh -c ", quoted,
                     " </dev/null >/dev/null 2>&1 &"));
  }
  ~CallLoop() {
    Stop();
    std::filesystem::remove_all(dir_);
  }
  // Ends the loop after its current call and waits for it.
  void Stop() {
    if (stopped_) return;
    stopped_ = true;
    std::ofstream(dir_ + "/stop") << "";
    Within(std::chrono::seconds(15),
           [&] { return std::filesystem::exists(dir_ + "/done"); });
  }
  std::vector<std::string> Lines() const {
    std::ifstream in(dir_ + "/log");
    std::vector<std::string> out;
    for (std::string line; std::getline(in, line);)
      if (!line.empty()) out.push_back(line);
    return out;
  }
  bool WaitFor(size_t calls) const {
    return Within(std::chrono::seconds(20),
                  [&] { return Lines().size() >= calls; })
        .has_value();
  }

 private:
  std::string dir_;
  bool stopped_ = false;
};

// The lines of a call log that are not "200 ...".
std::vector<std::string> Failures(const std::vector<std::string>& lines) {
  std::vector<std::string> out;
  for (const auto& l : lines)
    if (!absl::StartsWith(l, "200 ")) out.push_back(l);
  return out;
}

// Which nodes node k's agent knows a `vn` workload on.
std::set<std::string> WorkloadNodes(const ClusterScope& cluster, int k,
                                    const std::string& vn) {
  std::set<std::string> nodes;
  json j = cluster.Node(k).AdminJson("/workloads");
  for (const json& w : j.value("workloads", json::array()))
    if (w.value("virtualNode", "") == vn) {
      std::string node = w.value("node", "");
      nodes.insert(node.empty() ? ClusterScope::NodeName(k) : node);
    }
  return nodes;
}

json EtcdStatus(const ClusterScope& cluster, int k) {
  json ready = cluster.Node(k).AdminJson("/ready");
  return ready["components"]["config_source"].value("etcd", json::object());
}

// The /ready HTTP status of node k's agent.
int ReadyStatus(const ClusterScope& cluster, int k) {
  int status = 0;
  const_cast<ClusterScope&>(cluster).Node(k).agent().Get(
      cluster.Node(k).admin(), "/ready", &status);
  return status;
}

ClusterScope::Options EtcdOptions(const std::string& lease_ttl = "3") {
  ClusterScope::Options o;
  o.etcd = true;
  o.lease_ttl = lease_ttl;
  return o;
}

// Starts the cluster with `model`, then waits until every agent knows every
// node and, for each virtual node with workloads, the nodes they run on.
::testing::AssertionResult StartConverged(ClusterScope& cluster,
                                          const json& model) {
  if (!cluster.Start(model))
    return ::testing::AssertionFailure() << "the cluster did not start";
  std::map<std::string, std::set<std::string>> expected;
  for (const ClusterScope::Workload& w : cluster.workloads())
    expected[w.virtual_node].insert(ClusterScope::NodeName(w.node));
  auto converged = [&] {
    for (int k = 1; k <= cluster.size(); ++k) {
      if (EtcdStatus(cluster, k).value("nodes", 0) != cluster.size())
        return false;
      for (const auto& [vn, nodes] : expected)
        if (WorkloadNodes(cluster, k, vn) != nodes) return false;
    }
    return true;
  };
  if (Within(std::chrono::seconds(10), converged).has_value())
    return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "the agents did not converge: node 1 has "
         << cluster.Node(1).AdminJson("/workloads").dump() << "\n"
         << EtcdStatus(cluster, 1).dump();
}

TEST(ClusterEtcdTest, AwsCliOnOneNodeSteersTrafficOnAnotherWithinTwoSeconds) {
  ClusterScope cluster(3, EtcdOptions());
  cluster.AddWorkload(2, "m", "back", 9000);
  cluster.AddWorkload(3, "m", "back-v2", 9000);
  ASSERT_TRUE(
      StartConverged(cluster, json::array({Mesh(), RegistryNode("back", 9000),
                                           RegistryNode("back-v2", 9000)})));

  AwsCli aws;
  auto create = [&](const std::string& args) {
    int rc = -1;
    std::string out = aws.Run(cluster, 1, args, &rc);
    EXPECT_EQ(rc, 0) << "aws appmesh " << args << "\n" << out;
  };
  json listener = {{"portMapping", {{"port", 9000}, {"protocol", "http"}}}};
  auto route = [](const std::string& target) {
    return json{{"httpRoute",
                 {{"match", {{"prefix", "/"}}},
                  {"action",
                   {{"weightedTargets",
                     {{{"virtualNode", target}, {"weight", 1}}}}}}}}};
  };
  create("create-virtual-router --mesh-name m --virtual-router-name r --spec " +
         Q({{"listeners", {listener}}}));
  create(
      "create-route --mesh-name m --virtual-router-name r --route-name "
      "main --spec " +
      Q(route("back-v2")));
  create(
      "create-virtual-service --mesh-name m --virtual-service-name "
      "back.m.local --spec " +
      Q({{"provider", {{"virtualRouter", {{"virtualRouterName", "r"}}}}}}));
  create("create-virtual-node --mesh-name m --virtual-node-name front --spec " +
         Q(RegistryNode("front", 8080, {"back.m.local"})["spec"]));
  auto written = Clock::now();

  // Node 3 steers its front's calls to back-v2 within 2 s.
  auto call = [&] {
    return cluster.RunAsWorkload(
        3, "m", "front", "curl -s --max-time 2 http://back.m.local:9000/");
  };
  std::string answer;
  ASSERT_TRUE(Within(std::chrono::seconds(10),
                     [&] {
                       answer = call();
                       return answer == "back-v2@n3\n";
                     })
                  .has_value())
      << answer;
  double first = Seconds(Clock::now() - written);
  EXPECT_LT(first, 2.0) << "node 3 took " << first << " s";

  // The keys are where the README says, in the App Mesh API shape.
  std::string key = "/nodemesh/model/m/Route/r/main";
  int rc = -1;
  std::string value =
      cluster.etcd()->Etcdctl("get --print-value-only " + key, &rc);
  ASSERT_EQ(rc, 0) << value;
  json stored = json::parse(value, nullptr, false);
  ASSERT_TRUE(stored.is_object()) << value;
  EXPECT_EQ(stored["route"].value("routeName", ""), "main") << value;
  EXPECT_EQ(stored["route"]["metadata"].value("version", 0), 1) << value;

  // An update on node 1 moves node 3's traffic back, within 2 s too.
  create(
      "update-route --mesh-name m --virtual-router-name r --route-name "
      "main --spec " +
      Q(route("back")));
  written = Clock::now();
  ASSERT_TRUE(Within(std::chrono::seconds(10),
                     [&] {
                       answer = call();
                       return answer == "back@n2\n";
                     })
                  .has_value())
      << answer;
  double second = Seconds(Clock::now() - written);
  EXPECT_LT(second, 2.0) << "node 3 took " << second << " s";
  std::cout << "propagation to node 3 (AWS CLI write to a call that sees it): "
            << first << " s, " << second << " s\n";

  // Every node's API describes the same resource at the same version.
  for (int k = 1; k <= 3; ++k) {
    json d = json::parse(
        aws.Run(cluster, k,
                "describe-route --mesh-name m --virtual-router-name r "
                "--route-name main"),
        nullptr, false);
    EXPECT_EQ(d["route"]["metadata"].value("version", 0), 2) << k << d.dump();
  }
}

TEST(ClusterEtcdTest, ConcurrentUpdatesOnTwoNodesNeverLoseOne) {
  ClusterScope cluster(3, EtcdOptions());
  ASSERT_TRUE(cluster.Start(json::array({Mesh(), RegistryNode("back", 9000)})));
  AwsCli aws;
  // Every update sets a different port: which one won is visible.
  constexpr int kPerNode = 6;
  // Each node runs its updates in parallel from a script file (the specs'
  // JSON is single-quoted inside).
  auto run_batch = [&](int k, std::string* out) {
    std::string file = "/tmp/" + UniqueName("updates") + ".sh";
    std::string script;
    for (int i = 0; i < kPerNode; ++i) {
      int port = 10000 + k * 100 + i;
      absl::StrAppend(
          &script, "(",
          aws.Command(cluster, k,
                      "update-virtual-node --mesh-name m --virtual-node-name "
                      "back --spec " +
                          Q(RegistryNode("back", port)["spec"])),
          " > ", file, ".", i, " 2>&1; echo \"rc=$? $(tr -d '\\n' < ", file,
          ".", i, ")\") &\n");
    }
    script += "wait\n";
    std::ofstream(file) << script;
    *out = cluster.Node(k).Run("sh " + file);
    for (int i = 0; i < kPerNode; ++i)
      std::filesystem::remove(file + "." + std::to_string(i));
    std::filesystem::remove(file);
  };
  std::string out1, out3;
  std::thread t1([&] { run_batch(1, &out1); });
  std::thread t3([&] { run_batch(3, &out3); });
  t1.join();
  t3.join();
  int ok = 0, conflicts = 0;
  std::set<int> versions;
  for (const std::string& out : {out1, out3}) {
    for (absl::string_view line :
         absl::StrSplit(out, '\n', absl::SkipEmpty())) {
      if (absl::StartsWith(line, "rc=0 ")) {
        ++ok;
        json j = json::parse(line.substr(5), nullptr, false);
        versions.insert(j["virtualNode"]["metadata"].value("version", 0));
      } else {
        EXPECT_TRUE(absl::StrContains(line, "ConflictException")) << line;
        ++conflicts;
      }
    }
  }
  EXPECT_EQ(ok + conflicts, 2 * kPerNode) << out1 << out3;
  // Each success made a version of its own: none overwrote another unseen.
  EXPECT_EQ(static_cast<int>(versions.size()), ok) << out1 << out3;
  json final_state = json::parse(
      aws.Run(cluster, 2,
              "describe-virtual-node --mesh-name m --virtual-node-name back"),
      nullptr, false);
  EXPECT_EQ(final_state["virtualNode"]["metadata"].value("version", 0), 1 + ok)
      << final_state.dump();
  std::cout << "concurrent updates: " << ok << " applied, " << conflicts
            << " refused with ConflictException\n";
}

TEST(ClusterEtcdTest, AKilledAgentsEndpointsLeaveWithinTheTtlAndTrafficShifts) {
  ClusterScope cluster(3, EtcdOptions("3"));
  cluster.AddWorkload(2, "m", "back", 9000);
  cluster.AddWorkload(3, "m", "back", 9000);
  ASSERT_TRUE(StartConverged(cluster, FrontBackModel()));

  CallLoop calls(cluster, 1, "http://back.m.local:9000/");
  ASSERT_TRUE(calls.WaitFor(20));
  cluster.Node(2).KillAgent();
  auto gone = Within(std::chrono::seconds(10), [&] {
    return WorkloadNodes(cluster, 1, "back") == std::set<std::string>{"n3"} &&
           WorkloadNodes(cluster, 3, "back") == std::set<std::string>{"n3"};
  });
  ASSERT_TRUE(gone.has_value())
      << cluster.Node(1).AdminJson("/workloads").dump();
  EXPECT_LE(*gone, 3.0 + 1.0) << "the lease TTL is 3 s";
  EXPECT_EQ(EtcdStatus(cluster, 1).value("nodes", 0), 2);
  size_t at_shift = calls.Lines().size();
  ASSERT_TRUE(calls.WaitFor(at_shift + 30));
  calls.Stop();
  std::vector<std::string> lines = calls.Lines();
  EXPECT_TRUE(Failures(lines).empty())
      << Failures(lines).size() << " of " << lines.size()
      << " calls failed, e.g. " << Failures(lines).front();
  for (size_t i = at_shift; i < lines.size(); ++i)
    EXPECT_EQ(lines[i], "200 back@n3") << i;
  std::cout << "n2's endpoints left the other nodes " << *gone
            << " s after kill -9 (TTL 3 s); " << lines.size()
            << " calls, none failed\n";

  // A new agent on n2 registers again (its lease expired: a new one).
  ASSERT_TRUE(cluster.Node(2).RestartAgent());
  EXPECT_TRUE(Within(std::chrono::seconds(10), [&] {
                return WorkloadNodes(cluster, 1, "back") ==
                       std::set<std::string>{"n2", "n3"};
              }).has_value());
}

TEST(ClusterEtcdTest, ARestartKeepsRegistrationsAndCleanupRemovesThemAtOnce) {
  // A long TTL: deregistration by --cleanup must not wait for it.
  ClusterScope cluster(2, EtcdOptions("10"));
  cluster.AddWorkload(2, "m", "back", 9000);
  ASSERT_TRUE(StartConverged(cluster, FrontBackModel()));
  std::string lease = EtcdStatus(cluster, 2)["registration"].value("lease", "");

  // SIGTERM, then a new agent: node 1 never stops seeing n2's endpoint.
  std::atomic<bool> restarting{true};
  std::atomic<int> missing{0}, polls{0};
  std::thread watcher([&] {
    while (restarting) {
      if (!WorkloadNodes(cluster, 1, "back").count("n2")) ++missing;
      ++polls;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });
  EXPECT_EQ(cluster.Node(2).agent().Terminate(), 0);
  ASSERT_TRUE(cluster.Node(2).RestartAgent());
  // Past the old agent's last renewal plus a TTL.
  std::this_thread::sleep_for(std::chrono::seconds(12));
  restarting = false;
  watcher.join();
  EXPECT_EQ(missing.load(), 0) << "of " << polls.load() << " polls";
  EXPECT_EQ(EtcdStatus(cluster, 2)["registration"].value("lease", ""), lease)
      << "the new agent renews the old agent's lease";
  EXPECT_EQ(EtcdStatus(cluster, 2)["registration"].value("ok", false), true);

  // Decommissioning n2: gone from node 1 at once, not after the TTL.
  EXPECT_EQ(cluster.Node(2).agent().Terminate(), 0);
  std::vector<std::string> flags = cluster.Node(2).Flags();
  for (const std::string& f : cluster.AgentFlags(2)) flags.push_back(f);
  flags.push_back("--cleanup");
  AgentProcess cleanup(cluster.Node(2).netns_fd(), flags);
  auto started = Clock::now();
  ASSERT_EQ(cleanup.WaitExit(30000), 0)
      << RunCommand("cat " + cleanup.log_path());
  auto gone = Within(std::chrono::seconds(10), [&] {
    return WorkloadNodes(cluster, 1, "back").empty() &&
           EtcdStatus(cluster, 1).value("nodes", 0) == 1;
  });
  ASSERT_TRUE(gone.has_value());
  double after = Seconds(Clock::now() - started);
  EXPECT_LT(after, 5.0) << "deregistration waited for the 10 s lease";
  int rc = -1;
  std::string left = cluster.etcd()->Etcdctl(
      "get --prefix --keys-only /nodemesh/workloads/n2/", &rc);
  EXPECT_EQ(rc, 0);
  EXPECT_TRUE(absl::StripAsciiWhitespace(left).empty()) << left;
}

TEST(ClusterEtcdTest, EtcdGoneForThirtySecondsFailsNoCallAndLosesNothing) {
  ClusterScope cluster(3, EtcdOptions("3"));
  cluster.AddWorkload(2, "m", "back", 9000);
  ASSERT_TRUE(StartConverged(cluster, FrontBackModel()));
  AwsCli aws;
  for (int i = 0; i < 5; ++i) {
    int rc = -1;
    std::string out = aws.Run(
        cluster, 1,
        absl::StrCat(
            "create-virtual-node --mesh-name m --virtual-node-name "
            "extra-",
            i, " --spec ",
            Q(RegistryNode("x", static_cast<uint16_t>(7000 + i))["spec"])),
        &rc);
    ASSERT_EQ(rc, 0) << out;
  }
  int rc = -1;
  std::string before =
      cluster.etcd()->Etcdctl("get --prefix --keys-only /nodemesh/model/", &rc);
  ASSERT_EQ(rc, 0);

  CallLoop calls(cluster, 1, "http://back.m.local:9000/");
  ASSERT_TRUE(calls.WaitFor(20));
  cluster.etcd()->Stop();
  auto stopped = Clock::now();

  // Every agent says its config source is not ready, and serves on.
  for (int k = 1; k <= 3; ++k) {
    ASSERT_TRUE(Within(std::chrono::seconds(5),
                       [&] { return ReadyStatus(cluster, k) == 503; })
                    .has_value())
        << k;
    json source =
        cluster.Node(k).AdminJson("/ready")["components"]["config_source"];
    EXPECT_FALSE(source.value("ready", true)) << source.dump();
    EXPECT_FALSE(source["etcd"].value("connected", true)) << source.dump();
    EXPECT_TRUE(source["etcd"].contains("error")) << source.dump();
  }
  // A write fails loudly: the CLI shows why, and nothing changes.
  std::string refused = aws.Run(
      cluster, 3,
      "create-virtual-node --mesh-name m --virtual-node-name lost --spec " +
          Q(RegistryNode("x", 7100)["spec"]),
      &rc);
  EXPECT_NE(rc, 0);
  EXPECT_TRUE(absl::StrContains(refused, "ServiceUnavailableException"))
      << refused;
  EXPECT_TRUE(absl::StrContains(refused, "etcd")) << refused;

  std::this_thread::sleep_for(std::chrono::seconds(30) -
                              (Clock::now() - stopped));
  size_t during = calls.Lines().size();
  ASSERT_TRUE(cluster.etcd()->Restart());
  for (int k = 1; k <= 3; ++k)
    EXPECT_TRUE(Within(std::chrono::seconds(10),
                       [&] { return ReadyStatus(cluster, k) == 200; })
                    .has_value())
        << k << " " << EtcdStatus(cluster, k).dump();
  calls.Stop();
  std::vector<std::string> lines = calls.Lines();
  EXPECT_GT(lines.size(), 100u);
  EXPECT_TRUE(Failures(lines).empty())
      << Failures(lines).size() << " of " << lines.size()
      << " calls failed, e.g. " << Failures(lines).front();
  std::cout << lines.size() << " calls across 30 s without etcd (" << during
            << " before it came back), none failed\n";

  // Nothing lost: the same keys, every node's API lists every node, n2's
  // registration is still there, and a new write reaches the others.
  EXPECT_EQ(
      cluster.etcd()->Etcdctl("get --prefix --keys-only /nodemesh/model/"),
      before);
  for (int k = 1; k <= 3; ++k) {
    json list =
        json::parse(aws.Run(cluster, k, "list-virtual-nodes --mesh-name m"),
                    nullptr, false);
    EXPECT_EQ(list["virtualNodes"].size(), 7u) << k << list.dump();
    EXPECT_EQ(WorkloadNodes(cluster, k, "back"), std::set<std::string>{"n2"});
  }
  std::string out = aws.Run(
      cluster, 1,
      "create-virtual-node --mesh-name m --virtual-node-name after --spec " +
          Q(RegistryNode("x", 7200)["spec"]),
      &rc);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_TRUE(Within(std::chrono::seconds(2), [&] {
                int code = -1;
                aws.Run(cluster, 3,
                        "describe-virtual-node --mesh-name m "
                        "--virtual-node-name after",
                        &code);
                return code == 0;
              }).has_value());
}

TEST(ClusterEtcdTest, AnAgentStartedWhileEtcdIsDownServesTheLastState) {
  ClusterScope cluster(2, EtcdOptions("10"));
  cluster.AddWorkload(2, "m", "back", 9000);
  ASSERT_TRUE(StartConverged(cluster, FrontBackModel()));
  auto call = [&] {
    return cluster.RunAsWorkload(
        1, "m", "front", "curl -s --max-time 5 http://back.m.local:9000/");
  };
  ASSERT_EQ(call(), "back@n2\n");
  // The agent keeps what it saw in its state dir (written within 2 s).
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  cluster.etcd()->Stop();
  EXPECT_EQ(cluster.Node(1).agent().Terminate(), 0);
  ASSERT_TRUE(cluster.Node(1).RestartAgent());
  // Not ready (no etcd), but serving the mesh its predecessor served: the
  // name, the route and the endpoint on n2 behind its tunnel.
  EXPECT_EQ(ReadyStatus(cluster, 1), 503);
  EXPECT_EQ(call(), "back@n2\n");
  EXPECT_EQ(WorkloadNodes(cluster, 1, "back"), std::set<std::string>{"n2"});
  ASSERT_TRUE(cluster.etcd()->Restart());
  EXPECT_TRUE(Within(std::chrono::seconds(10), [&] {
                return ReadyStatus(cluster, 1) == 200;
              }).has_value());
  EXPECT_EQ(call(), "back@n2\n");
}

TEST(ClusterEtcdTest, AWatchThatMissedACompactionListsAgain) {
  ClusterScope cluster(3, EtcdOptions("10"));
  ASSERT_TRUE(StartConverged(
      cluster, json::array({Mesh(), RegistryNode("back", 9000)})));
  EXPECT_EQ(EtcdStatus(cluster, 3).value("lists", 0), 1);
  // Node 3's agent freezes; etcd restarts (its watch connection breaks),
  // the model changes, and the history is compacted away.
  ::kill(cluster.Node(3).agent().pid(), SIGSTOP);
  struct Resume {
    pid_t pid;
    ~Resume() { ::kill(pid, SIGCONT); }
  } resume{cluster.Node(3).agent().pid()};
  cluster.etcd()->Stop();
  ASSERT_TRUE(cluster.etcd()->Restart());
  AwsCli aws;
  int rc = -1;
  std::string out = aws.Run(
      cluster, 1,
      "create-virtual-node --mesh-name m --virtual-node-name late --spec " +
          Q(RegistryNode("x", 7300)["spec"]),
      &rc);
  ASSERT_EQ(rc, 0) << out;
  out = aws.Run(cluster, 1,
                "delete-virtual-node --mesh-name m --virtual-node-name back",
                &rc);
  ASSERT_EQ(rc, 0) << out;
  std::string status = cluster.etcd()->Etcdctl("endpoint status -w json", &rc);
  json st = json::parse(status, nullptr, false);
  ASSERT_TRUE(st.is_array() && !st.empty()) << status;
  int64_t revision = st[0]["Status"]["header"].value("revision", int64_t{0});
  out = cluster.etcd()->Etcdctl(absl::StrCat("compact ", revision), &rc);
  ASSERT_EQ(rc, 0) << out;

  ::kill(cluster.Node(3).agent().pid(), SIGCONT);
  auto caught_up = Within(std::chrono::seconds(10), [&] {
    int a = -1, b = -1;
    aws.Run(cluster, 3,
            "describe-virtual-node --mesh-name m --virtual-node-name late", &a);
    aws.Run(cluster, 3,
            "describe-virtual-node --mesh-name m --virtual-node-name back", &b);
    return a == 0 && b != 0;
  });
  EXPECT_TRUE(caught_up.has_value()) << EtcdStatus(cluster, 3).dump();
  EXPECT_TRUE(
      Within(std::chrono::seconds(5),
             [&] { return EtcdStatus(cluster, 3).value("lists", 0) == 2; })
          .has_value())
      << "a second list after the compaction at " << revision << ": "
      << EtcdStatus(cluster, 3).dump();
  EXPECT_EQ(ReadyStatus(cluster, 3), 200);
}

}  // namespace
}  // namespace nodemesh::testing
