// Writes the seed corpus of h2_frame_fuzz: real client byte streams (the
// preface, SETTINGS and its ACK, HEADERS, DATA, trailers) from a client
// H2Codec that has seen a server's SETTINGS, each behind the fuzzer's four
// control bytes.
//   h2_fuzz_corpus tests/fuzz/h2/corpus

#include <cstdio>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "agent/http/h2_codec.h"

namespace nodemesh::http {
namespace {

class Client : public H2Visitor {
 public:
  void OnHeaders(int32_t, const H2HeaderBlock&, bool) override {}
  void OnData(int32_t, std::string_view) override {}
  void OnEndStream(int32_t) override {}
  void OnStreamClose(int32_t, uint32_t) override {}
  H2OutBody* BodyOf(int32_t stream_id) override { return &bodies[stream_id]; }

  std::map<int32_t, H2OutBody> bodies;
};

// A client codec that has the server's SETTINGS (extended CONNECT allowed).
struct Session {
  Session() : server(H2Codec::Role::kServer, &server_visitor) {
    std::string settings;
    server.Produce(&settings, 1 << 20);
    codec.Feed(settings);
  }

  int32_t Request(
      std::vector<HeaderField> fields, const std::string& data, bool end,
      std::vector<std::pair<std::string, std::string>> trailers = {}) {
    H2OutBody body;
    body.data = data;
    body.end = end;
    body.trailers = std::move(trailers);
    const bool has_body = !data.empty() || !body.trailers.empty() || !end;
    int32_t id = codec.SubmitRequest(fields, has_body ? &pending : nullptr);
    if (has_body) client.bodies[id] = std::move(body);
    return id;
  }

  std::string Bytes() {
    std::string out;
    codec.Produce(&out, 1 << 20);
    return out;
  }

  Client client;
  Client server_visitor;
  // Non-null opens a stream with a body; the codec pulls it via BodyOf.
  H2OutBody pending;
  H2Codec codec{H2Codec::Role::kClient, &client};
  H2Codec server;
};

// Hand-encoded frames: HPACK literals without Huffman coding or indexing,
// so that mutations of a seed change names and values byte by byte.
std::string Frame(uint8_t type, uint8_t flags, uint32_t stream,
                  const std::string& payload) {
  const size_t n = payload.size();
  std::string f = {static_cast<char>(n >> 16),
                   static_cast<char>(n >> 8),
                   static_cast<char>(n),
                   static_cast<char>(type),
                   static_cast<char>(flags),
                   static_cast<char>(stream >> 24),
                   static_cast<char>(stream >> 16),
                   static_cast<char>(stream >> 8),
                   static_cast<char>(stream)};
  return f + payload;
}

std::string Literals(const std::vector<HeaderField>& fields) {
  std::string out;
  for (const HeaderField& f : fields) {  // names and values < 127 bytes
    out += '\0';
    out += static_cast<char>(f.name.size());
    out.append(f.name);
    out += static_cast<char>(f.value.size());
    out.append(f.value);
  }
  return out;
}

constexpr uint8_t kData = 0, kHeaders = 1, kSettings = 4;
constexpr uint8_t kEndStream = 1, kEndHeaders = 4;

std::string RawStart() {
  return std::string("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") +
         Frame(kSettings, 0, 0, "");
}

void Write(const std::string& dir, const char* name, std::string control,
           const std::string& bytes) {
  std::ofstream f(dir + "/" + name, std::ios::binary);
  f << control << bytes;
}

}  // namespace
}  // namespace nodemesh::http

int main(int argc, char** argv) {
  using nodemesh::http::HeaderField;
  using nodemesh::http::Session;
  using nodemesh::http::Write;
  if (argc != 2) {
    std::fprintf(stderr, "usage: h2_fuzz_corpus DIR\n");
    return 2;
  }
  const std::string dir = argv[1];
  const std::vector<HeaderField> get = {{":method", "GET"},
                                        {":scheme", "http"},
                                        {":authority", "svc.local"},
                                        {":path", "/"},
                                        {"accept", "*/*"}};
  {
    Session s;
    s.Request(get, "", true);
    Write(dir, "get", std::string("\x03\x00\x40\xc0", 4), s.Bytes());
  }
  {
    Session s;
    s.Request({{":method", "POST"},
               {":scheme", "http"},
               {":authority", "svc.local:8080"},
               {":path", "/upload?x=1"},
               {"content-length", "11"},
               {"content-type", "text/plain"}},
              "hello world", true);
    Write(dir, "post_length", std::string("\x03\x00\x80\xf0", 4), s.Bytes());
  }
  {
    Session s;
    s.Request({{":method", "POST"},
               {":scheme", "http"},
               {":authority", "greeter.svc"},
               {":path", "/helloworld.Greeter/SayHello"},
               {"content-type", "application/grpc"},
               {"te", "trailers"},
               {"grpc-timeout", "1S"}},
              std::string("\0\0\0\0\x07\x0a\x05world", 12), true,
              {{"x-checksum", "abc"}});
    Write(dir, "grpc_trailers", std::string("\x07\x02\x60\xa0", 4), s.Bytes());
  }
  {
    Session s;
    s.Request({{":method", "CONNECT"},
               {":protocol", "websocket"},
               {":scheme", "http"},
               {":authority", "chat.svc"},
               {":path", "/ws"},
               {"sec-websocket-version", "13"}},
              "\x81\x02hi", false);
    Write(dir, "websocket", std::string("\x03\x04\x50\xd0", 4), s.Bytes());
  }
  {
    Session s;
    s.Request({{":method", "CONNECT"}, {":authority", "db.svc:5432"}},
              "tunnel bytes", false);
    Write(dir, "connect", std::string("\x03\x01\x30\x90", 4), s.Bytes());
  }
  {
    Session s;
    s.Request(get, "", true);
    int32_t id = s.Request({{":method", "PUT"},
                            {":scheme", "http"},
                            {":authority", "svc.local"},
                            {":path", "/a"}},
                           std::string(3000, 'p'), false);
    s.Request(get, "", true);
    std::string bytes = s.Bytes();
    s.codec.ResetStream(id, 8);
    s.codec.GoawayFinal();
    bytes += s.Bytes();
    Write(dir, "streams_reset_goaway", std::string("\x00\x03\x55\xaa", 4),
          bytes);
  }
  using nodemesh::http::Frame;
  using nodemesh::http::kData;
  using nodemesh::http::kEndHeaders;
  using nodemesh::http::kEndStream;
  using nodemesh::http::kHeaders;
  using nodemesh::http::Literals;
  using nodemesh::http::RawStart;
  Write(dir, "raw_post_length", std::string("\x03\x00\x70\xb0", 4),
        RawStart() +
            Frame(kHeaders, kEndHeaders, 1,
                  Literals({{":method", "POST"},
                            {":scheme", "http"},
                            {":authority", "svc.local"},
                            {":path", "/form"},
                            {"content-length", "5"},
                            {"content-type", "text/plain"}})) +
            Frame(kData, kEndStream, 1, "hello"));
  Write(dir, "raw_trailers", std::string("\x03\x05\x40\xe0", 4),
        RawStart() +
            Frame(kHeaders, kEndHeaders, 1,
                  Literals({{":method", "PUT"},
                            {":scheme", "http"},
                            {":authority", "svc.local"},
                            {":path", "/obj"}})) +
            Frame(kData, 0, 1, "part") +
            Frame(kHeaders, kEndHeaders | kEndStream, 1,
                  Literals({{"x-digest", "sha-256=abc"}})));
  Write(dir, "raw_connect", std::string("\x03\x02\x60\xc0", 4),
        RawStart() +
            Frame(kHeaders, kEndHeaders, 1,
                  Literals({{":method", "CONNECT"},
                            {":authority", "db.svc:5432"}})) +
            Frame(kData, 0, 1, "tunnel"));
  // Once refused by our own HTTP/1.1 parser after translation: a CONNECT
  // with a length, a length with 26 digits.
  Write(dir, "raw_connect_length", std::string("\x03\x02\x60\xc0", 4),
        RawStart() +
            Frame(kHeaders, kEndHeaders, 1,
                  Literals({{":method", "CONNECT"},
                            {":authority", "db.svc:5432"},
                            {"content-length", "6"}})) +
            Frame(kData, 0, 1, "tunnel"));
  Write(
      dir, "raw_length_zeros", std::string("\x03\x00\x70\xb0", 4),
      RawStart() +
          Frame(kHeaders, kEndHeaders, 1,
                Literals({{":method", "POST"},
                          {":scheme", "http"},
                          {":authority", "svc.local"},
                          {":path", "/form"},
                          {"content-length", "00000000000000000000000005"}})) +
          Frame(kData, kEndStream, 1, "hello"));
  return 0;
}
