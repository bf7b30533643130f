#pragma once

#include <sys/socket.h>

#include <cerrno>
#include <cstdint>
#include <string>
#include <string_view>

#include "agent/http/h2_codec.h"

namespace nodemesh::proxy {

// What an HTTP/2 connection (either side) has to write: frames its codec
// produces, in batches while little is queued, sent until the socket is
// full. One buffer per connection, capacity kept.
class H2Output {
 public:
  // Bytes that go before the codec's (the 101 of an h2c upgrade).
  void Append(std::string_view bytes) { buf_.append(bytes); }
  // False: the codec failed or the socket did; close the connection.
  bool Flush(http::H2Codec* codec, int fd, uint64_t* bytes_sent) {
    while (true) {
      if (buf_.size() - off_ < kBatch / 2) {
        if (off_ > 0) {
          buf_.erase(0, off_);
          off_ = 0;
        }
        if (!codec->Produce(&buf_, kBatch)) return false;
      }
      if (off_ == buf_.size()) break;
      ssize_t n =
          ::send(fd, buf_.data() + off_, buf_.size() - off_, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        return false;
      }
      if (bytes_sent != nullptr) *bytes_sent += static_cast<uint64_t>(n);
      off_ += static_cast<size_t>(n);
    }
    if (off_ == buf_.size()) {
      buf_.clear();
      off_ = 0;
    }
    return true;
  }
  bool pending() const { return off_ < buf_.size(); }

 private:
  // Frames produced ahead of the socket: a few full windows of small
  // streams, little enough that one connection cannot hoard memory.
  static constexpr size_t kBatch = 128 * 1024;
  std::string buf_;
  size_t off_ = 0;
};

}  // namespace nodemesh::proxy
