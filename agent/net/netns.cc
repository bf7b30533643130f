#include "agent/net/netns.h"

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <thread>

#include "absl/strings/str_cat.h"

namespace nodemesh::net {

absl::Status RunInNetns(const std::string& path,
                        const std::function<absl::Status()>& fn) {
  absl::Status result;
  std::thread t([&] {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      result = absl::ErrnoToStatus(errno, absl::StrCat("open ", path));
      return;
    }
    int rc = ::setns(fd, CLONE_NEWNET);
    int err = errno;
    ::close(fd);
    if (rc != 0) {
      result = absl::ErrnoToStatus(err, absl::StrCat("setns ", path));
      return;
    }
    result = fn();
  });
  t.join();
  return result;
}

}  // namespace nodemesh::net
