#include "agent/http/h2_codec.h"

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <cstring>

namespace nodemesh::http {
namespace {

// Names go out lowercase (HTTP/2 requires it; HTTP/1.1 peers send any
// case). Built per submit in thread-local buffers whose capacity stays.
struct NvBuilder {
  std::vector<nghttp2_nv> nv;
  std::string lower;

  static bool IsUniquePerRequest(std::string_view name) {
    return name == "x-request-id" || name == "traceparent";
  }

  static bool HasUpper(std::string_view name) {
    for (char c : name) {
      if (c >= 'A' && c <= 'Z') return true;
    }
    return false;
  }

  void Build(std::span<const HeaderField> fields) {
    nv.clear();
    lower.clear();
    size_t total = 0;
    for (const HeaderField& f : fields) total += f.name.size();
    lower.reserve(total);  // no reallocation under the pointers below
    for (const HeaderField& f : fields) {
      nghttp2_nv v;
      if (HasUpper(f.name)) {
        size_t at = lower.size();
        for (char c : f.name) {
          lower.push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c);
        }
        v.name = reinterpret_cast<uint8_t*>(lower.data() + at);
      } else {
        // Already lowercase (most are): nghttp2 copies it at submit.
        v.name = reinterpret_cast<uint8_t*>(const_cast<char*>(f.name.data()));
      }
      v.namelen = f.name.size();
      v.value = reinterpret_cast<uint8_t*>(const_cast<char*>(f.value.data()));
      v.valuelen = f.value.size();
      // Values unique to each request would only churn the peer's HPACK
      // table (and ours), evicting the fields that do repeat.
      v.flags = IsUniquePerRequest(f.name) ? NGHTTP2_NV_FLAG_NO_INDEX
                                           : NGHTTP2_NV_FLAG_NONE;
      nv.push_back(v);
    }
  }
};

thread_local NvBuilder nv_builder;

}  // namespace

struct H2Codec::Callbacks {
  static H2Codec* Self(void* user_data) {
    return static_cast<H2Codec*>(user_data);
  }

  static int OnBeginHeaders(nghttp2_session*, const nghttp2_frame* frame,
                            void* user_data) {
    H2Codec* c = Self(user_data);
    if (frame->hd.type == NGHTTP2_HEADERS &&
        frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
      ++c->open_streams_;
    }
    c->block_bytes_.clear();
    c->block_fields_.clear();
    return 0;
  }

  static int OnHeader(nghttp2_session*, const nghttp2_frame*,
                      const uint8_t* name, size_t namelen, const uint8_t* value,
                      size_t valuelen, uint8_t, void* user_data) {
    H2Codec* c = Self(user_data);
    FieldAt f;
    f.name = static_cast<uint32_t>(c->block_bytes_.size());
    f.name_len = static_cast<uint32_t>(namelen);
    c->block_bytes_.append(reinterpret_cast<const char*>(name), namelen);
    f.value = static_cast<uint32_t>(c->block_bytes_.size());
    f.value_len = static_cast<uint32_t>(valuelen);
    c->block_bytes_.append(reinterpret_cast<const char*>(value), valuelen);
    c->block_fields_.push_back(f);
    return 0;
  }

  static int OnFrameRecv(nghttp2_session*, const nghttp2_frame* frame,
                         void* user_data) {
    H2Codec* c = Self(user_data);
    const bool end = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    switch (frame->hd.type) {
      case NGHTTP2_HEADERS:
        c->DeliverBlock(frame->hd.stream_id, end);
        break;
      case NGHTTP2_DATA:
        if (end) c->visitor_->OnEndStream(frame->hd.stream_id);
        break;
      case NGHTTP2_SETTINGS:
        if ((frame->hd.flags & NGHTTP2_FLAG_ACK) == 0)
          c->visitor_->OnSettings();
        break;
      case NGHTTP2_GOAWAY:
        c->goaway_received_ = true;
        c->visitor_->OnGoaway(frame->goaway.last_stream_id,
                              frame->goaway.error_code);
        break;
      default:
        break;
    }
    return 0;
  }

  static int OnDataChunk(nghttp2_session*, uint8_t, int32_t stream_id,
                         const uint8_t* data, size_t len, void* user_data) {
    Self(user_data)->visitor_->OnData(
        stream_id, std::string_view(reinterpret_cast<const char*>(data), len));
    return 0;
  }

  static int OnInvalidFrame(nghttp2_session*, const nghttp2_frame*, int,
                            void* user_data) {
    ++Self(user_data)->protocol_errors_;
    return 0;
  }

  static int OnStreamClose(nghttp2_session*, int32_t stream_id,
                           uint32_t error_code, void* user_data) {
    H2Codec* c = Self(user_data);
    if (c->open_streams_ > 0) --c->open_streams_;
    c->visitor_->OnStreamClose(stream_id, error_code);
    return 0;
  }

  // The data source of every stream: pulls from the sender's H2OutBody.
  static ssize_t ReadBody(nghttp2_session* session, int32_t stream_id,
                          uint8_t* buf, size_t length, uint32_t* flags,
                          nghttp2_data_source*, void* user_data) {
    H2Codec* c = Self(user_data);
    H2OutBody* body = c->visitor_->BodyOf(stream_id);
    if (body == nullptr) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    size_t n = std::min(length, body->pending());
    if (n > 0) std::memcpy(buf, body->data.data() + body->off, n);
    body->off += n;
    if (body->pending() > 0) return static_cast<ssize_t>(n);
    body->data.clear();
    body->off = 0;
    if (body->end) {
      *flags |= NGHTTP2_DATA_FLAG_EOF;
      if (!body->trailers.empty()) {
        *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
        thread_local std::vector<HeaderField> fields;  // capacity kept
        fields.clear();
        for (const auto& [name, value] : body->trailers)
          fields.push_back({name, value});
        nv_builder.Build(fields);
        if (nghttp2_submit_trailer(session, stream_id, nv_builder.nv.data(),
                                   nv_builder.nv.size()) != 0) {
          return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        }
      }
    } else if (n == 0) {
      body->deferred = true;
      return NGHTTP2_ERR_DEFERRED;
    }
    if (c->drained_.empty() || c->drained_.back() != stream_id)
      c->drained_.push_back(stream_id);
    return static_cast<ssize_t>(n);
  }
};

H2Codec::H2Codec(Role role, H2Visitor* visitor, const H2CodecOptions& options)
    : visitor_(visitor) {
  nghttp2_session_callbacks* cbs = nullptr;
  nghttp2_session_callbacks_new(&cbs);
  nghttp2_session_callbacks_set_on_begin_headers_callback(
      cbs, &Callbacks::OnBeginHeaders);
  nghttp2_session_callbacks_set_on_header_callback(cbs, &Callbacks::OnHeader);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs,
                                                       &Callbacks::OnFrameRecv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(
      cbs, &Callbacks::OnDataChunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(
      cbs, &Callbacks::OnStreamClose);
  nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(
      cbs, &Callbacks::OnInvalidFrame);
  nghttp2_option* opt = nullptr;
  nghttp2_option_new(&opt);
  // Windows open when the bytes are passed on (Consume), not on receipt.
  nghttp2_option_set_no_auto_window_update(opt, 1);
  // No RFC 7540 priority tree: the proxy serves streams in arrival order,
  // and keeping closed streams for the tree costs per stream.
  nghttp2_option_set_no_closed_streams(opt, 1);
  if (role == Role::kClient) {
    nghttp2_option_set_peer_max_concurrent_streams(opt, 100);
    nghttp2_session_client_new2(&session_, cbs, this, opt);
  } else {
    nghttp2_session_server_new2(&session_, cbs, this, opt);
  }
  nghttp2_option_del(opt);
  nghttp2_session_callbacks_del(cbs);
  if (session_ == nullptr) return;
  nghttp2_settings_entry iv[5];
  size_t n = 0;
  iv[n++] = {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, options.stream_window};
  iv[n++] = {NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1};
  if (role == Role::kServer) {
    iv[n++] = {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS,
               options.max_concurrent_streams};
    iv[n++] = {NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL, 1};
  } else {
    iv[n++] = {NGHTTP2_SETTINGS_ENABLE_PUSH, 0};
  }
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, iv, n);
  nghttp2_session_set_local_window_size(
      session_, NGHTTP2_FLAG_NONE, 0,
      static_cast<int32_t>(options.connection_window));
}

H2Codec::~H2Codec() {
  if (session_ != nullptr) nghttp2_session_del(session_);
}

void H2Codec::DeliverBlock(int32_t stream_id, bool end_stream) {
  // Field by field: the header list keeps its capacity (no allocation per
  // block).
  block_.method = block_.scheme = block_.authority = block_.path =
      block_.protocol = {};
  block_.status = 0;
  block_.headers.Clear();
  const char* base = block_bytes_.data();
  for (const FieldAt& f : block_fields_) {
    std::string_view name(base + f.name, f.name_len);
    std::string_view value(base + f.value, f.value_len);
    if (name.empty() || name.front() != ':') {
      block_.headers.Add(name, value);
    } else if (name == ":method") {
      block_.method = value;
    } else if (name == ":scheme") {
      block_.scheme = value;
    } else if (name == ":authority") {
      block_.authority = value;
    } else if (name == ":path") {
      block_.path = value;
    } else if (name == ":protocol") {
      block_.protocol = value;
    } else if (name == ":status") {
      int status = 0;
      for (char ch : value) status = status * 10 + (ch - '0');
      block_.status = status;
    }
  }
  visitor_->OnHeaders(stream_id, block_, end_stream);
}

bool H2Codec::Feed(std::string_view data) {
  if (session_ == nullptr) return false;
  ssize_t n = nghttp2_session_mem_recv(
      session_, reinterpret_cast<const uint8_t*>(data.data()), data.size());
  if (n < 0) return false;
  // A connection error nghttp2 answered with GOAWAY itself: nothing more
  // will be read.
  if (nghttp2_session_want_read(session_) == 0 && !goaway_received_ &&
      !goaway_sent_) {
    ++protocol_errors_;
    return false;
  }
  return true;
}

bool H2Codec::Produce(std::string* out, size_t limit) {
  if (session_ == nullptr) return false;
  bool ok = true;
  while (out->size() < limit) {
    const uint8_t* bytes = nullptr;
    ssize_t n = nghttp2_session_mem_send(session_, &bytes);
    if (n < 0) {
      ok = false;
      break;
    }
    if (n == 0) break;
    out->append(reinterpret_cast<const char*>(bytes), static_cast<size_t>(n));
  }
  for (size_t i = 0; i < drained_.size(); ++i)
    visitor_->OnBodyDrained(drained_[i]);
  drained_.clear();
  return ok;
}

bool H2Codec::Finished() const {
  return session_ == nullptr || (nghttp2_session_want_read(session_) == 0 &&
                                 nghttp2_session_want_write(session_) == 0);
}

bool H2Codec::UpgradeFromHttp1(std::string_view settings_payload,
                               bool head_request) {
  if (session_ == nullptr) return false;
  if (nghttp2_session_upgrade2(
          session_, reinterpret_cast<const uint8_t*>(settings_payload.data()),
          settings_payload.size(), head_request ? 1 : 0, nullptr) != 0) {
    return false;
  }
  ++open_streams_;
  return true;
}

int32_t H2Codec::SubmitRequest(std::span<const HeaderField> fields,
                               H2OutBody* body) {
  if (session_ == nullptr) return -1;
  nv_builder.Build(fields);
  nghttp2_data_provider provider;
  provider.source.ptr = body;
  provider.read_callback = &Callbacks::ReadBody;
  int32_t id = nghttp2_submit_request(
      session_, nullptr, nv_builder.nv.data(), nv_builder.nv.size(),
      body != nullptr ? &provider : nullptr, nullptr);
  if (id > 0) ++open_streams_;
  return id;
}

bool H2Codec::SubmitResponse(int32_t stream_id,
                             std::span<const HeaderField> fields,
                             H2OutBody* body) {
  if (session_ == nullptr) return false;
  nv_builder.Build(fields);
  nghttp2_data_provider provider;
  provider.source.ptr = body;
  provider.read_callback = &Callbacks::ReadBody;
  return nghttp2_submit_response(session_, stream_id, nv_builder.nv.data(),
                                 nv_builder.nv.size(),
                                 body != nullptr ? &provider : nullptr) == 0;
}

void H2Codec::ResumeData(int32_t stream_id, H2OutBody* body) {
  if (session_ == nullptr || !body->deferred) return;
  body->deferred = false;
  nghttp2_session_resume_data(session_, stream_id);
}

void H2Codec::ResetStream(int32_t stream_id, uint32_t error_code) {
  if (session_ == nullptr) return;
  nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, stream_id, error_code);
}

void H2Codec::Consume(int32_t stream_id, size_t bytes) {
  if (session_ == nullptr || bytes == 0) return;
  if (nghttp2_session_consume(session_, stream_id, bytes) != 0) {
    // The stream is gone: its bytes still count against the connection.
    nghttp2_session_consume_connection(session_, bytes);
  }
}

void H2Codec::ShutdownNotice() {
  if (session_ != nullptr) nghttp2_submit_shutdown_notice(session_);
}

void H2Codec::GoawayFinal(uint32_t error_code) {
  if (session_ == nullptr) return;
  goaway_sent_ = true;
  nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE,
                        nghttp2_session_get_last_proc_stream_id(session_),
                        error_code, nullptr, 0);
}

void H2Codec::SetStreamData(int32_t stream_id, void* data) {
  if (session_ != nullptr)
    nghttp2_session_set_stream_user_data(session_, stream_id, data);
}

void* H2Codec::StreamData(int32_t stream_id) const {
  return session_ == nullptr
             ? nullptr
             : nghttp2_session_get_stream_user_data(session_, stream_id);
}

uint32_t H2Codec::PeerMaxConcurrentStreams() const {
  if (session_ == nullptr) return 0;
  return nghttp2_session_get_remote_settings(
      session_, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
}

}  // namespace nodemesh::http
