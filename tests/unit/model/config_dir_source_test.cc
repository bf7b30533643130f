#include "agent/model/config_dir_source.h"

#include <chrono>
#include <thread>

#include "agent/model/model_source.h"
#include "gtest/gtest.h"
#include "tests/unit/model/model_test_util.h"

namespace nodemesh::model {
namespace {

// Runs the loop until `done` or the deadline.
bool RunUntil(net::EventLoop* loop, const std::function<bool()>& done,
              std::chrono::milliseconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  std::function<void()> poll = [&] {
    if (done() || std::chrono::steady_clock::now() > deadline) {
      loop->Stop();
      return;
    }
    loop->AddTimer(std::chrono::milliseconds(5), poll);
  };
  poll();
  loop->Run();
  return done();
}

TEST(ConfigDirSourceTest, ManyWritesBecomeOneDebouncedChange) {
  TempConfigDir dir;
  auto loop = *net::EventLoop::Create();
  int changes = 0;
  ConfigDirSource source(loop.get(), dir.path(), std::chrono::milliseconds(50),
                         [&] { ++changes; });
  ASSERT_TRUE(source.Start().ok());
  for (int i = 0; i < 20; ++i)
    dir.Write("sub/dir/f" + std::to_string(i) + ".json", "{}");
  EXPECT_TRUE(RunUntil(
      loop.get(), [&] { return changes > 0; }, std::chrono::seconds(2)));
  RunUntil(
      loop.get(), [] { return false; }, std::chrono::milliseconds(200));
  EXPECT_EQ(changes, 1);
}

TEST(ConfigDirSourceTest, ListModelFilesSkipsClusterAndHidden) {
  TempConfigDir dir;
  dir.Write("b.yaml", "");
  dir.Write("a/c.yml", "");
  dir.Write("a/d.json", "");
  dir.Write("a/notes.txt", "");
  dir.Write("cluster/nodes.json", "");
  dir.Write(".git/x.json", "");
  EXPECT_EQ(ListModelFiles(dir.path()),
            (std::vector<std::string>{"a/c.yml", "a/d.json", "b.yaml"}));
}

TEST(ModelSourceTest, ValidChangeGoesLiveInvalidChangeKeepsLastGood) {
  TempConfigDir dir;
  dir.Write("mesh.json", R"({"meshName": "shop", "spec": {}})");
  auto loop = *net::EventLoop::Create();
  ModelSource model(loop.get(), dir.path());
  ASSERT_TRUE(model.Start().ok());
  ASSERT_EQ(model.current()->version, 1u);
  ASSERT_EQ(model.current()->resources.size(), 1u);

  auto started = std::chrono::steady_clock::now();
  dir.Write("vs.json", R"({"meshName": "shop", "virtualServiceName": "a",
                           "spec": {}})");
  ASSERT_TRUE(RunUntil(
      loop.get(), [&] { return model.current()->version == 2; },
      std::chrono::seconds(2)));
  EXPECT_LT(std::chrono::steady_clock::now() - started,
            std::chrono::seconds(1));
  EXPECT_EQ(model.current()->resources.size(), 2u);

  dir.Write("bad.json", R"({"meshName": "shop", "virtualNodeName": "n",
      "spec": {"listeners": [{"portMapping": {"port": 99999,
      "protocol": "http"}}]}})");
  ASSERT_TRUE(RunUntil(
      loop.get(), [&] { return model.status().reloads_failed > 0; },
      std::chrono::seconds(2)));
  EXPECT_EQ(model.current()->version, 2u);  // still the last good one
  EXPECT_NE(model.status().last_error.find("bad.json"), std::string::npos);
  EXPECT_NE(model.status().last_error.find("portMapping.port"),
            std::string::npos);
}

}  // namespace
}  // namespace nodemesh::model
