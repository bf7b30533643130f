#include "agent/datapath/kernel_fs.h"

#include <unistd.h>

#include <fstream>

#include "gtest/gtest.h"

namespace nodemesh::datapath {
namespace {

std::string WriteMounts(const std::string& text) {
  std::string path =
      ::testing::TempDir() + "/mounts-" + std::to_string(::getpid()) + "-" +
      ::testing::UnitTest::GetInstance()->current_test_info()->name();
  std::ofstream(path) << text;
  return path;
}

TEST(KernelFsTest, FindsCgroup2InHybridLayout) {
  auto path = WriteMounts(
      "tmpfs /sys/fs/cgroup tmpfs rw 0 0\n"
      "cgroup /sys/fs/cgroup/memory cgroup rw,memory 0 0\n"
      "cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0\n");
  auto mount = FindCgroup2Mount(path);
  ASSERT_TRUE(mount.ok()) << mount.status();
  EXPECT_EQ(*mount, "/sys/fs/cgroup/unified");
}

TEST(KernelFsTest, FindsCgroup2InUnifiedLayout) {
  auto path = WriteMounts("cgroup2 /sys/fs/cgroup cgroup2 rw 0 0\n");
  EXPECT_EQ(*FindCgroup2Mount(path), "/sys/fs/cgroup");
}

TEST(KernelFsTest, NoCgroup2IsAClearError) {
  auto path = WriteMounts("cgroup /sys/fs/cgroup/memory cgroup rw 0 0\n");
  auto mount = FindCgroup2Mount(path);
  ASSERT_FALSE(mount.ok());
  EXPECT_NE(mount.status().message().find("cgroup2"), std::string::npos);
}

TEST(KernelFsTest, PinDirOutsideAnyBpffsIsRefusedWithItsName) {
  auto path = WriteMounts("bpf /sys/fs/bpf bpf rw 0 0\n");
  auto s = EnsureBpffs("/tmp/not-bpf/pins", path);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("/tmp/not-bpf/pins"), std::string::npos);
}

}  // namespace
}  // namespace nodemesh::datapath
