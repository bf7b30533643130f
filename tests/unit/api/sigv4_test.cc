#include "agent/api/sigv4.h"

#include <time.h>

#include <deque>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"

namespace nodemesh::api {
namespace {

// Signatures below were computed by botocore's SigV4Auth (the AWS CLI's
// signer) with key AKIDNODEMESH / c2VjcmV0/Key+Example (see Creds()) at
// 2024-05-01T10:00:00Z, region us-west-2.
constexpr char kAmzDate[] = "20240501T100000Z";
constexpr char kScope[] =
    "AKIDNODEMESH/20240501/us-west-2/appmesh/aws4_request";

std::chrono::system_clock::time_point At(int y, int mo, int d, int h, int mi,
                                         int s) {
  struct tm tm = {};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = s;
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

const auto kSignedAt = At(2024, 5, 1, 10, 0, 0);

// Owns the bytes an AdminRequest points into. Movable (a deque keeps its
// elements' addresses), not copyable.
struct Request {
  Request(std::string m, std::string p, std::string q, std::string b)
      : method(std::move(m)),
        path(std::move(p)),
        query(std::move(q)),
        body(std::move(b)) {}
  Request(Request&&) = default;
  Request(const Request&) = delete;

  std::string method, path, query, body;
  std::deque<std::string> strings;
  http::HeaderList headers;

  void Header(std::string name, std::string value) {
    strings.push_back(std::move(name));
    std::string_view n = strings.back();
    strings.push_back(std::move(value));
    headers.Add(n, strings.back());
  }
  void Sign(const std::string& signed_headers, const std::string& signature) {
    Header("X-Amz-Date", kAmzDate);
    Header("Authorization", std::string("AWS4-HMAC-SHA256 Credential=") +
                                kScope + ", SignedHeaders=" + signed_headers +
                                ", Signature=" + signature);
  }
  admin::AdminRequest View() const {
    admin::AdminRequest r;
    r.method = method;
    r.path = path;
    r.query = query;
    r.body = body;
    r.headers = &headers;
    return r;
  }
};

CredentialSet Creds() {
  auto c = CredentialSet::Parse(
      "# shared with the AWS CLI\n[other]\naws_access_key_id=AKIDOTHER\n"
      "aws_secret_access_key = x\n\n[profile nodemesh]\n"
      "aws_access_key_id = AKIDNODEMESH\r\n"
      "aws_secret_access_key = c2VjcmV0/Key+Example\r\nregion = us-west-2\n",
      "creds.ini");
  EXPECT_TRUE(c.ok()) << c.status();
  return *c;
}

Request CreateMesh() {
  Request r{"PUT", "/v20190125/meshes", "",
            R"({"meshName":"shop","clientToken":"abc"})"};
  r.Header("Host", "127.0.0.1:15000");
  r.Header("Content-Type", "application/json");
  r.Header("Content-Length", "39");
  r.Sign("content-type;host;x-amz-date",
         "30f952ff2175740448c7560e5b3b4d95d20543ce1194e53d2c3821b23f1741cb");
  return r;
}

TEST(SigV4Test, AwsSuiteGetVanilla) {
  // AWS's published SigV4 test suite, case "get-vanilla".
  auto creds = CredentialSet::Parse(
      "[default]\naws_access_key_id=AKIDEXAMPLE\n"
      "aws_secret_access_key=wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY\n",
      "suite");
  ASSERT_TRUE(creds.ok());
  Request r{"GET", "/", "", ""};
  r.Header("Host", "example.amazonaws.com");
  r.Header("X-Amz-Date", "20150830T123600Z");
  r.Header("Authorization",
           "AWS4-HMAC-SHA256 "
           "Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
           "SignedHeaders=host;x-amz-date, "
           "Signature="
           "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
  SigV4Options opts;
  opts.service = "service";
  SigV4Result v =
      VerifySigV4(r.View(), *creds, At(2015, 8, 30, 12, 40, 0), opts);
  EXPECT_TRUE(v.ok) << v.error_type << ": " << v.message;
}

TEST(SigV4Test, BotocorePutWithBody) {
  CredentialSet creds = Creds();
  Request r = CreateMesh();
  SigV4Result v = VerifySigV4(r.View(), creds, kSignedAt);
  ASSERT_TRUE(v.ok) << v.error_type << ": " << v.message;
  EXPECT_EQ(v.credential->profile, "nodemesh");
}

TEST(SigV4Test, BotocoreGetWithEncodedQuery) {
  CredentialSet creds = Creds();
  Request r{"GET", "/v20190125/meshes/shop/virtualNodes",
            "limit=2&nextToken=a%2Fb%3D%3D", ""};
  r.Header("Host", "127.0.0.1:15000");
  r.Sign("host;x-amz-date",
         "3067e82946975267f8198b3f38b5253464fa494b6637148e96dfd41e2b0bdabc");
  SigV4Result v = VerifySigV4(r.View(), creds, kSignedAt);
  EXPECT_TRUE(v.ok) << v.error_type << ": " << v.message;
}

TEST(SigV4Test, BotocoreArnInQuery) {
  CredentialSet creds = Creds();
  Request r{"GET", "/v20190125/tags",
            "resourceArn=arn%3Aaws%3Aappmesh%3Aus-west-2%3A123456789012%3Amesh%"
            "2Fshop",
            ""};
  r.Header("Host", "localhost:8080");
  r.Sign("host;x-amz-date",
         "3cf4d95cccfd73facc51a3e660ebbf4780cda0e77566dbb7432f6fd6726a558f");
  SigV4Result v = VerifySigV4(r.View(), creds, kSignedAt);
  EXPECT_TRUE(v.ok) << v.error_type << ": " << v.message;
}

TEST(SigV4Test, BotocoreEncodedPathIsDoubleEncoded) {
  CredentialSet creds = Creds();
  Request r{"DELETE",
            "/v20190125/meshes/shop/virtualServices/my%20svc.shop.local", "",
            ""};
  r.Header("Host", "127.0.0.1:15000");
  r.Header("Content-Length", "0");
  r.Sign("host;x-amz-date",
         "9547730882fe668480aa8e4f982938ca83827beeff2a6144be8db666d9499fbb");
  SigV4Result v = VerifySigV4(r.View(), creds, kSignedAt);
  EXPECT_TRUE(v.ok) << v.error_type << ": " << v.message;
  EXPECT_EQ(CanonicalUri(r.path),
            "/v20190125/meshes/shop/virtualServices/my%2520svc.shop.local");
}

TEST(SigV4Test, TamperedBodyFailsWithInvalidSignature) {
  CredentialSet creds = Creds();
  Request r = CreateMesh();
  r.body = R"({"meshName":"evil","clientToken":"abc"})";
  SigV4Result v = VerifySigV4(r.View(), creds, kSignedAt);
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.error_type, "InvalidSignatureException");
  EXPECT_NE(v.message.find("does not match"), std::string::npos);
}

TEST(SigV4Test, WrongSecretFails) {
  auto creds = CredentialSet::Parse(
      "[default]\naws_access_key_id=AKIDNODEMESH\n"
      "aws_secret_access_key=not-the-secret\n",
      "creds.ini");
  ASSERT_TRUE(creds.ok());
  SigV4Result v = VerifySigV4(CreateMesh().View(), *creds, kSignedAt);
  EXPECT_EQ(v.error_type, "InvalidSignatureException");
  EXPECT_NE(v.message.find("creds.ini"), std::string::npos);
}

TEST(SigV4Test, UnknownKeyIsUnrecognizedClient) {
  auto creds = CredentialSet::Parse(
      "[default]\naws_access_key_id=AKIDSOMEONE\naws_secret_access_key=x\n",
      "creds.ini");
  ASSERT_TRUE(creds.ok());
  SigV4Result v = VerifySigV4(CreateMesh().View(), *creds, kSignedAt);
  EXPECT_EQ(v.error_type, "UnrecognizedClientException");
  EXPECT_NE(v.message.find("AKIDNODEMESH"), std::string::npos);
}

TEST(SigV4Test, ClockSkewBeyondFifteenMinutesFails) {
  CredentialSet creds = Creds();
  Request r = CreateMesh();
  EXPECT_TRUE(
      VerifySigV4(r.View(), creds, kSignedAt + std::chrono::minutes(14)).ok);
  EXPECT_TRUE(
      VerifySigV4(r.View(), creds, kSignedAt - std::chrono::minutes(14)).ok);
  SigV4Result late =
      VerifySigV4(r.View(), creds, kSignedAt + std::chrono::minutes(16));
  EXPECT_EQ(late.error_type, "InvalidSignatureException");
  EXPECT_NE(late.message.find("20240501T100000Z"), std::string::npos);
  EXPECT_FALSE(
      VerifySigV4(r.View(), creds, kSignedAt - std::chrono::minutes(16)).ok);
}

TEST(SigV4Test, UnsignedRequestIsMissingAuthenticationToken) {
  Request r{"GET", "/v20190125/meshes", "", ""};
  r.Header("Host", "h");
  SigV4Result v = VerifySigV4(r.View(), Creds(), kSignedAt);
  EXPECT_EQ(v.error_type, "MissingAuthenticationTokenException");
}

TEST(SigV4Test, OtherServiceScopeFails) {
  Request r{"GET", "/v20190125/meshes", "", ""};
  r.Header("Host", "h");
  r.Header("X-Amz-Date", kAmzDate);
  r.Header("Authorization",
           "AWS4-HMAC-SHA256 Credential=AKIDNODEMESH/20240501/us-west-2/s3/"
           "aws4_request, SignedHeaders=host;x-amz-date, Signature=00");
  SigV4Result v = VerifySigV4(r.View(), Creds(), kSignedAt);
  EXPECT_EQ(v.error_type, "InvalidSignatureException");
  EXPECT_NE(v.message.find("'appmesh'"), std::string::npos);
}

TEST(SigV4Test, MismatchedContentSha256Fails) {
  Request r = CreateMesh();
  r.Header("X-Amz-Content-SHA256", "UNSIGNED-PAYLOAD");
  SigV4Result v = VerifySigV4(r.View(), Creds(), kSignedAt);
  EXPECT_EQ(v.error_type, "InvalidSignatureException");
  EXPECT_NE(v.message.find("X-Amz-Content-SHA256"), std::string::npos);
}

TEST(SigV4Test, SignedHeaderMissingFromRequestFails) {
  Request r{"GET", "/v20190125/meshes", "", ""};
  r.Header("Host", "h");
  r.Sign("host;x-amz-date;x-custom", "00");
  SigV4Result v = VerifySigV4(r.View(), Creds(), kSignedAt);
  EXPECT_EQ(v.error_type, "IncompleteSignatureException");
  EXPECT_NE(v.message.find("x-custom"), std::string::npos);
}

TEST(SigV4Test, CanonicalQueryIsSortedAndStrictlyEncoded) {
  EXPECT_EQ(CanonicalQueryString("b=2&a=x%2Fy&a=1&c"), "a=1&a=x%2Fy&b=2&c=");
  EXPECT_EQ(CanonicalQueryString("k=a b~"), "k=a%20b~");
  EXPECT_EQ(CanonicalQueryString(""), "");
}

TEST(SigV4Test, Sha256AndHmacKnownAnswers) {
  EXPECT_EQ(Sha256Hex(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  // RFC 4231 test case 2.
  std::string mac = HmacSha256("Jefe", "what do ya want for nothing?");
  std::string hex;
  for (unsigned char c : mac) {
    static constexpr char kHex[] = "0123456789abcdef";
    hex.push_back(kHex[c >> 4]);
    hex.push_back(kHex[c & 0xf]);
  }
  EXPECT_EQ(hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(CredentialSetTest, ProfileMissingSecretNamesIt) {
  auto c = CredentialSet::Parse("[ci]\naws_access_key_id = AKID\n", "f.ini");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("f.ini: profile [ci]"),
            std::string::npos);
}

TEST(CredentialSetTest, EmptyFileExplainsFormat) {
  auto c = CredentialSet::Parse("# nothing\n", "f.ini");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("aws_access_key_id"), std::string::npos);
}

TEST(CredentialSetTest, MissingFileNamesFlag) {
  auto c = CredentialSet::LoadFile("/nonexistent/creds");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("--api_credentials_file"),
            std::string::npos);
}

TEST(PercentDecodeTest, RejectsTruncatedEscapes) {
  std::string out;
  EXPECT_TRUE(PercentDecode("a%2Fb", &out));
  EXPECT_EQ(out, "a/b");
  EXPECT_FALSE(PercentDecode("a%2", &out));
  EXPECT_FALSE(PercentDecode("a%", &out));
  EXPECT_FALSE(PercentDecode("%zz", &out));
}

}  // namespace
}  // namespace nodemesh::api
