#include "agent/proxy/access_log_files.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "glog/logging.h"

namespace nodemesh::proxy {

AccessLogFiles::~AccessLogFiles() { Flush(); }

bool AccessLogFiles::Open(File* f, bool log_errors) {
  // O_NONBLOCK: a pipe nobody reads (/dev/stdout under a stalled log
  // driver) must not stall the worker; regular files ignore it.
  int fd = ::open(f->path.c_str(),
                  O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NONBLOCK, 0644);
  // A socket cannot be opened through /dev/stdout (systemd's journal
  // stream: ENXIO); the agent's own descriptor serves, blocking as it is.
  if (fd < 0 && errno == ENXIO &&
      (f->path == "/dev/stdout" || f->path == "/dev/stderr")) {
    fd = ::fcntl(f->path == "/dev/stdout" ? 1 : 2, F_DUPFD_CLOEXEC, 0);
  }
  if (fd < 0) {
    int err = errno;
    ++stats_->access_log_open_errors;
    if (log_errors) {
      LOG(ERROR) << "access log " << f->path
                 << ": cannot open: " << std::strerror(err)
                 << " (the agent does not create directories; retried every "
                    "few seconds)";
    }
    return false;
  }
  f->fd = net::UniqueFd(fd);
  return true;
}

void AccessLogFiles::Sync(const std::vector<std::string>& paths,
                          bool log_errors) {
  std::vector<File> next(paths.size());
  failed_ = 0;
  for (size_t i = 0; i < paths.size(); ++i) {
    File& f = next[i];
    f.path = paths[i];
    for (File& old : files_) {
      if (old.path == f.path && old.fd.valid()) {
        f.fd = std::move(old.fd);
        f.pending = std::move(old.pending);
        break;
      }
    }
    if (!f.fd.valid() && !Open(&f, log_errors)) ++failed_;
  }
  // Files that left the config: their last lines go out before they close.
  for (File& old : files_) {
    if (old.fd.valid()) Write(&old);
  }
  files_ = std::move(next);
}

void AccessLogFiles::RetryFailed(bool log_errors) {
  failed_ = 0;
  for (File& f : files_) {
    if (!f.fd.valid() && !Open(&f, log_errors)) ++failed_;
  }
}

std::string* AccessLogFiles::Buffer(uint32_t sink, std::string_view path) {
  File* f = nullptr;
  if (sink < files_.size() && files_[sink].path == path) {
    f = &files_[sink];
  } else {
    for (File& candidate : files_) {
      if (candidate.path == path) f = &candidate;
    }
  }
  if (f == nullptr || !f->fd.valid()) return nullptr;
  return &f->pending;
}

void AccessLogFiles::Commit(std::string* buffer) {
  ++stats_->access_log_lines;
  dirty_ = true;
  if (buffer->size() < kFlushBytes) return;
  for (File& f : files_) {
    if (&f.pending == buffer) Write(&f);
  }
}

void AccessLogFiles::Flush() {
  if (!dirty_) return;
  dirty_ = false;
  for (File& f : files_) {
    if (!f.pending.empty()) Write(&f);
  }
}

void AccessLogFiles::Write(File* f) {
  if (f->pending.empty()) return;
  ssize_t n = ::write(f->fd.get(), f->pending.data(), f->pending.size());
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) &&
      f->pending.size() <= kMaxPending) {
    dirty_ = true;  // try again after the next batch
    return;
  }
  if (n < 0) {
    ++stats_->access_log_write_errors;
    LOG_EVERY_N(WARNING, 1000)
        << "access log " << f->path
        << ": write failed: " << std::strerror(errno) << "; lines dropped";
    f->pending.clear();
    return;
  }
  // A short write (a pipe with little room): the rest goes next time.
  f->pending.erase(0, static_cast<size_t>(n));
  if (!f->pending.empty()) dirty_ = true;
  if (f->pending.capacity() > 4 * kFlushBytes && f->pending.empty())
    std::string().swap(f->pending);
}

}  // namespace nodemesh::proxy
