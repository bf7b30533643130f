#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/admin/admin_server.h"

namespace nodemesh::api {

// How the App Mesh API authenticates callers (--api_auth,
// --api_credentials_file).
struct ApiAuthConfig {
  enum class Mode {
    kSigV4,  // AWS Signature Version 4, as the AWS CLI and SDKs sign
    kNone,   // unsigned requests accepted (demos); signatures are ignored
  };
  Mode mode = Mode::kSigV4;
  // The AWS CLI's credentials INI file. Empty in kSigV4 mode: reads are
  // served, writes refused.
  std::string credentials_file;
};

struct Credential {
  std::string profile;  // the [section] it came from, for logs
  std::string access_key_id;
  std::string secret_access_key;
};

// The keys the API accepts, from a file in the AWS CLI's own credentials
// format, so the CLI and the agent can share one file:
//
//   [default]
//   aws_access_key_id = AKIA...
//   aws_secret_access_key = ...
//
// Every section with both keys is accepted ("[profile x]" as in
// ~/.aws/config too); other keys (aws_session_token, region) are ignored.
class CredentialSet {
 public:
  // `source` names the text in error messages (the file path).
  static absl::StatusOr<CredentialSet> Parse(std::string_view text,
                                             std::string_view source);
  static absl::StatusOr<CredentialSet> LoadFile(const std::string& path);

  const Credential* Find(std::string_view access_key_id) const;
  size_t size() const { return creds_.size(); }
  const std::string& source() const { return source_; }

 private:
  std::vector<Credential> creds_;
  std::string source_;
};

struct SigV4Options {
  std::string service = "appmesh";  // the signing name in the scope
  std::chrono::seconds max_clock_skew{15 * 60};
};

// A verdict on one request. On failure, error_type is the code the AWS SDKs
// know (MissingAuthenticationTokenException, IncompleteSignatureException,
// UnrecognizedClientException, InvalidSignatureException) and message says
// why; the HTTP status is 403.
struct SigV4Result {
  bool ok = false;
  std::string error_type;
  std::string message;
  const Credential* credential = nullptr;  // on success
};

// Verifies the Authorization header (AWS4-HMAC-SHA256) of `req` against
// `creds`: any region, the service in `options`, X-Amz-Date within the
// allowed skew of `now`, and the body's SHA-256 (X-Amz-Content-SHA256, when
// sent, must match it). Query-string (presigned) signatures are refused.
SigV4Result VerifySigV4(const admin::AdminRequest& req,
                        const CredentialSet& creds,
                        std::chrono::system_clock::time_point now,
                        const SigV4Options& options = {});

// The steps of the signature, exposed for tests.
std::string Sha256Hex(std::string_view data);
std::string HmacSha256(std::string_view key, std::string_view data);  // raw
// The path as received, URI-encoded once more (all AWS services but S3).
std::string CanonicalUri(std::string_view raw_path);
// Decoded, strictly re-encoded, sorted by key then value.
std::string CanonicalQueryString(std::string_view raw_query);
// kSigning = HMAC chain over date (YYYYMMDD), region, service, "aws4_request".
std::string SigningKey(std::string_view secret, std::string_view date,
                       std::string_view region, std::string_view service);

// Percent-decodes `in`; false on a malformed escape.
bool PercentDecode(std::string_view in, std::string* out);

}  // namespace nodemesh::api
