// The agent's etcd client and watcher against a real etcd (Debian's
// etcd-server on the loopback, random ports): compare-and-swap, leases,
// watches from a revision, the cancel a compaction causes, an unreachable
// etcd, and a watcher that resumes across an etcd restart without missing
// or repeating a change.

#include "agent/etcd/etcd_client.h"

#include <chrono>
#include <map>
#include <thread>

#include "agent/etcd/etcd_watcher.h"
#include "agent/net/event_loop.h"
#include "gtest/gtest.h"
#include "tests/integration/etcd_fixture.h"
#include "tests/integration/fixtures.h"

namespace nodemesh::etcd {
namespace {

using testing::EtcdServer;

class EtcdClientTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(server_.Start()); }

  Client::Options ClientOptions() const {
    Client::Options o;
    o.endpoints.push_back(*ParseEndpoint(server_.endpoint()));
    return o;
  }

  EtcdServer server_{EtcdServer::Options{}};
};

TEST_F(EtcdClientTest, TransactionsCompareTheRevisionTheyRead) {
  Client c(ClientOptions());
  // Create only if absent (revision 0).
  auto r = c.Txn({{"/t/a", 0}}, {{"/t/a", std::string("one"), 0}});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->succeeded);
  r = c.Txn({{"/t/a", 0}}, {{"/t/a", std::string("two"), 0}});
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->succeeded) << "a second create must lose";

  auto got = c.Range("/t/a", "");
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->kvs.size(), 1u);
  EXPECT_EQ(got->kvs[0].value, "one");
  int64_t read = got->kvs[0].mod_revision;
  EXPECT_GT(read, 0);

  // An update based on that read wins once; the same read again loses.
  r = c.Txn({{"/t/a", read}}, {{"/t/a", std::string("three"), 0}});
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->succeeded);
  r = c.Txn({{"/t/a", read}}, {{"/t/a", std::string("stale"), 0}});
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->succeeded);
  EXPECT_EQ(c.Range("/t/a", "")->kvs[0].value, "three");

  // Bytes that JSON would mangle survive (the gateway's base64).
  std::string binary("\0\x01\xff\"\\\n", 6);
  ASSERT_TRUE(c.Txn({}, {{"/t/bin", binary, 0}})->succeeded);
  EXPECT_EQ(c.Range("/t/bin", "")->kvs[0].value, binary);

  // A prefix range, and a delete in a transaction.
  EXPECT_EQ(c.Range("/t/", PrefixEnd("/t/"))->kvs.size(), 2u);
  ASSERT_TRUE(c.Txn({}, {{"/t/a", std::nullopt, 0}})->succeeded);
  EXPECT_TRUE(c.Range("/t/a", "")->kvs.empty());
  EXPECT_EQ(*c.DeleteRange("/t/", PrefixEnd("/t/")), 1);
}

TEST_F(EtcdClientTest, LeasesKeepKeysUntilTheyExpireOrAreRevoked) {
  Client c(ClientOptions());
  auto lease = c.LeaseGrant(2);
  ASSERT_TRUE(lease.ok()) << lease.status();
  ASSERT_TRUE(c.Txn({}, {{"/l/kept", std::string("v"), *lease}})->succeeded);
  auto ttl = c.LeaseKeepAlive(*lease);
  ASSERT_TRUE(ttl.ok());
  EXPECT_EQ(*ttl, 2);
  EXPECT_EQ(c.Range("/l/kept", "")->kvs.at(0).lease, *lease);

  // Not renewed: etcd deletes the key once the TTL ran out.
  auto gone = std::chrono::steady_clock::now() + std::chrono::seconds(6);
  while (!c.Range("/l/kept", "")->kvs.empty() &&
         std::chrono::steady_clock::now() < gone)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_TRUE(c.Range("/l/kept", "")->kvs.empty());
  EXPECT_EQ(*c.LeaseKeepAlive(*lease), 0) << "an expired lease renews to 0";

  // A chosen id (what a restarted agent renews), revoked at once.
  auto chosen = c.LeaseGrant(30, 424242);
  ASSERT_TRUE(chosen.ok());
  EXPECT_EQ(*chosen, 424242);
  ASSERT_TRUE(c.Txn({}, {{"/l/revoked", std::string("v"), 424242}})->succeeded);
  ASSERT_TRUE(c.LeaseRevoke(424242).ok());
  EXPECT_TRUE(c.Range("/l/revoked", "")->kvs.empty());
}

TEST_F(EtcdClientTest, AWatchDeliversFromItsRevisionAndACompactionCancelsIt) {
  Client c(ClientOptions());
  int64_t first = c.Txn({}, {{"/w/a", std::string("1"), 0}})->revision;
  ASSERT_TRUE(c.Txn({}, {{"/w/b", std::string("2"), 0}}).ok());
  ASSERT_TRUE(c.Txn({}, {{"/w/a", std::nullopt, 0}}).ok());
  std::vector<Event> events;
  absl::Status s =
      c.Watch("/w/", PrefixEnd("/w/"), first, [&](const WatchResponse& r) {
        for (const Event& e : r.events) events.push_back(e);
        return events.size() < 3;
      });
  EXPECT_TRUE(s.ok()) << s;
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].kv.key, "/w/a");
  EXPECT_EQ(events[0].type, Event::Type::kPut);
  EXPECT_EQ(events[0].kv.mod_revision, first);
  EXPECT_EQ(events[1].kv.value, "2");
  EXPECT_EQ(events[2].type, Event::Type::kDelete);
  EXPECT_EQ(events[2].kv.key, "/w/a");

  // History before a compaction is gone: the watch says so and ends.
  int64_t now = c.Txn({}, {{"/w/c", std::string("3"), 0}})->revision;
  int rc = -1;
  server_.Etcdctl("compact " + std::to_string(now), &rc);
  ASSERT_EQ(rc, 0);
  WatchResponse last;
  s = c.Watch("/w/", PrefixEnd("/w/"), first, [&](const WatchResponse& r) {
    last = r;
    return true;
  });
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_TRUE(last.canceled);
  EXPECT_EQ(last.compact_revision, now);
}

TEST_F(EtcdClientTest, AnUnreachableEtcdIsAnErrorAndAbortEndsAWatch) {
  Client::Options o;
  o.endpoints.push_back(*net::SocketAddress::Parse(
      "127.0.0.1:" + std::to_string(testing::PickPort())));
  Client dead(o);
  auto started = std::chrono::steady_clock::now();
  auto r = dead.Range("/x", "");
  EXPECT_TRUE(absl::IsUnavailable(r.status())) << r.status();
  EXPECT_LT(std::chrono::steady_clock::now() - started,
            std::chrono::seconds(3));

  Client c(ClientOptions());
  std::thread aborter([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    c.Abort();
  });
  absl::Status s = c.Watch("/nothing/", PrefixEnd("/nothing/"), 0,
                           [](const WatchResponse&) { return true; });
  aborter.join();
  EXPECT_FALSE(s.ok()) << "an aborted watch is not a normal end";
}

TEST_F(EtcdClientTest, TheWatcherResumesAcrossARestartWithoutGapsOrRepeats) {
  Client c(ClientOptions());
  ASSERT_TRUE(c.Txn({}, {{"/r/listed", std::string("0"), 0}}).ok());
  auto loop = *net::EventLoop::Create();
  std::map<std::string, int> puts;  // key -> times seen
  int resets = 0;
  bool connected = false;
  Watcher watcher(
      loop.get(), ClientOptions(), "/r/",
      [&](const Watcher::Batch& b) {
        if (b.reset) {
          ++resets;
          for (const KeyValue& kv : b.kvs) ++puts[kv.key];
        }
        for (const Event& e : b.events)
          if (e.type == Event::Type::kPut) ++puts[e.kv.key];
      },
      [&](const Watcher::State& s) { connected = s.connected; });
  watcher.Start();
  auto run_until = [&](const std::function<bool()>& done) {
    auto limit = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!done() && std::chrono::steady_clock::now() < limit) {
      loop->AddTimer(std::chrono::milliseconds(20), [&] { loop->Stop(); });
      loop->Run();
    }
    return done();
  };
  ASSERT_TRUE(run_until([&] { return connected && puts.count("/r/listed"); }));
  ASSERT_TRUE(c.Txn({}, {{"/r/before", std::string("1"), 0}}).ok());
  ASSERT_TRUE(run_until([&] { return puts.count("/r/before") > 0; }));

  ASSERT_TRUE(server_.Stop());
  ASSERT_TRUE(run_until([&] { return !connected; }));
  ASSERT_TRUE(server_.Start());
  Client after(ClientOptions());
  ASSERT_TRUE(after.Txn({}, {{"/r/after", std::string("2"), 0}}).ok());
  ASSERT_TRUE(run_until([&] { return connected && puts.count("/r/after"); }));
  watcher.Stop();
  EXPECT_EQ(resets, 1) << "resumed by revision, not listed again";
  for (const auto& [key, n] : puts) EXPECT_EQ(n, 1) << key << " seen " << n;
  EXPECT_EQ(puts.size(), 3u);
}

}  // namespace
}  // namespace nodemesh::etcd
