#include "agent/api/sigv4.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <time.h>

#include <algorithm>
#include <fstream>
#include <optional>
#include <sstream>
#include <utility>

#include "absl/status/status.h"
#include "agent/http/header_list.h"

namespace nodemesh::api {
namespace {

constexpr std::string_view kAlgorithm = "AWS4-HMAC-SHA256";

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' ||
                        s.front() == '\r' || s.front() == '\n')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' ||
                        s.back() == '\r' || s.back() == '\n')) {
    s.remove_suffix(1);
  }
  return s;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string Hex(const unsigned char* p, size_t n) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (size_t i = 0; i < n; ++i) {
    out.push_back(kHex[p[i] >> 4]);
    out.push_back(kHex[p[i] & 0xf]);
  }
  return out;
}

bool Unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
         (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' || c == '~';
}

void UriEncode(std::string_view in, bool keep_slash, std::string* out) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (char ch : in) {
    unsigned char c = static_cast<unsigned char>(ch);
    if (Unreserved(c) || (keep_slash && c == '/')) {
      out->push_back(ch);
    } else {
      out->push_back('%');
      out->push_back(kHex[c >> 4]);
      out->push_back(kHex[c & 0xf]);
    }
  }
}

// "Trimall": trims and collapses runs of spaces, as the canonical headers
// require.
std::string CanonicalHeaderValue(std::string_view v) {
  std::string out;
  bool space = false;
  for (char c : Trim(v)) {
    if (c == ' ' || c == '\t') {
      space = true;
      continue;
    }
    if (space) out.push_back(' ');
    space = false;
    out.push_back(c);
  }
  return out;
}

// "20150830T123600Z" -> time_point; false if malformed.
bool ParseAmzDate(std::string_view s,
                  std::chrono::system_clock::time_point* t) {
  if (s.size() != 16 || s[8] != 'T' || s[15] != 'Z') return false;
  auto num = [&](size_t at, size_t len, int* v) {
    *v = 0;
    for (size_t i = at; i < at + len; ++i) {
      if (s[i] < '0' || s[i] > '9') return false;
      *v = *v * 10 + (s[i] - '0');
    }
    return true;
  };
  struct tm tm = {};
  int year, mon, day, hour, min, sec;
  if (!num(0, 4, &year) || !num(4, 2, &mon) || !num(6, 2, &day) ||
      !num(9, 2, &hour) || !num(11, 2, &min) || !num(13, 2, &sec)) {
    return false;
  }
  tm.tm_year = year - 1900;
  tm.tm_mon = mon - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = min;
  tm.tm_sec = sec;
  *t = std::chrono::system_clock::from_time_t(timegm(&tm));
  return true;
}

std::string FormatAmzDate(std::chrono::system_clock::time_point t) {
  time_t tt = std::chrono::system_clock::to_time_t(t);
  struct tm tm;
  gmtime_r(&tt, &tm);
  char buf[32];
  strftime(buf, sizeof(buf), "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

SigV4Result Fail(std::string type, std::string message) {
  SigV4Result r;
  r.error_type = std::move(type);
  r.message = std::move(message);
  return r;
}

struct AuthorizationHeader {
  std::string_view credential;  // AKID/date/region/service/aws4_request
  std::string_view signed_headers;
  std::string_view signature;
};

bool ParseAuthorization(std::string_view v, AuthorizationHeader* out) {
  v = Trim(v);
  if (!v.starts_with(kAlgorithm)) return false;
  v.remove_prefix(kAlgorithm.size());
  while (!v.empty()) {
    size_t comma = v.find(',');
    std::string_view part = Trim(v.substr(0, comma));
    v = comma == std::string_view::npos ? std::string_view()
                                        : v.substr(comma + 1);
    size_t eq = part.find('=');
    if (eq == std::string_view::npos) continue;
    std::string_view key = Trim(part.substr(0, eq));
    std::string_view value = Trim(part.substr(eq + 1));
    if (key == "Credential") out->credential = value;
    if (key == "SignedHeaders") out->signed_headers = value;
    if (key == "Signature") out->signature = value;
  }
  return !out->credential.empty() && !out->signed_headers.empty() &&
         !out->signature.empty();
}

std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  while (true) {
    size_t at = s.find(sep);
    out.push_back(s.substr(0, at));
    if (at == std::string_view::npos) break;
    s.remove_prefix(at + 1);
  }
  return out;
}

}  // namespace

absl::StatusOr<CredentialSet> CredentialSet::Parse(std::string_view text,
                                                   std::string_view source) {
  CredentialSet set;
  set.source_ = std::string(source);
  std::string section;
  Credential cur;
  int line_no = 0;
  auto finish = [&]() -> absl::Status {
    if (cur.access_key_id.empty() && cur.secret_access_key.empty()) {
      return absl::OkStatus();
    }
    if (cur.access_key_id.empty() || cur.secret_access_key.empty()) {
      return absl::InvalidArgumentError(
          std::string(source) + ": profile [" + cur.profile + "] has " +
          (cur.access_key_id.empty() ? "aws_secret_access_key but no "
                                       "aws_access_key_id"
                                     : "aws_access_key_id but no "
                                       "aws_secret_access_key") +
          "; give both");
    }
    set.creds_.push_back(std::move(cur));
    return absl::OkStatus();
  };
  for (std::string_view line : Split(text, '\n')) {
    ++line_no;
    line = Trim(line);
    if (line.empty() || line.front() == '#' || line.front() == ';') continue;
    if (line.front() == '[') {
      if (line.back() != ']') {
        return absl::InvalidArgumentError(std::string(source) + ":" +
                                          std::to_string(line_no) +
                                          ": section header missing ']'");
      }
      if (absl::Status st = finish(); !st.ok()) return st;
      std::string_view name = Trim(line.substr(1, line.size() - 2));
      if (name.starts_with("profile ")) name = Trim(name.substr(8));
      cur = Credential{};
      cur.profile = std::string(name);
      continue;
    }
    size_t eq = line.find('=');
    if (eq == std::string_view::npos) continue;  // INI continuation lines
    std::string key = Lower(Trim(line.substr(0, eq)));
    std::string_view value = Trim(line.substr(eq + 1));
    if (key == "aws_access_key_id") cur.access_key_id = std::string(value);
    if (key == "aws_secret_access_key") {
      cur.secret_access_key = std::string(value);
    }
  }
  if (absl::Status st = finish(); !st.ok()) return st;
  if (set.creds_.empty()) {
    return absl::InvalidArgumentError(
        std::string(source) +
        ": no profile with aws_access_key_id and aws_secret_access_key; the "
        "file uses the AWS CLI format: [default] then "
        "aws_access_key_id = ... and aws_secret_access_key = ...");
  }
  return set;
}

absl::StatusOr<CredentialSet> CredentialSet::LoadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError("cannot read API credentials file " + path +
                               " (--api_credentials_file)");
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return Parse(ss.str(), path);
}

const Credential* CredentialSet::Find(std::string_view access_key_id) const {
  for (const Credential& c : creds_) {
    if (c.access_key_id == access_key_id) return &c;
  }
  return nullptr;
}

std::string Sha256Hex(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  return Hex(md, len);
}

std::string HmacSha256(std::string_view key, std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), md,
       &len);
  return std::string(reinterpret_cast<const char*>(md), len);
}

std::string SigningKey(std::string_view secret, std::string_view date,
                       std::string_view region, std::string_view service) {
  std::string k = HmacSha256("AWS4" + std::string(secret), date);
  k = HmacSha256(k, region);
  k = HmacSha256(k, service);
  return HmacSha256(k, "aws4_request");
}

bool PercentDecode(std::string_view in, std::string* out) {
  out->clear();
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out->push_back(in[i]);
      continue;
    }
    if (i + 2 >= in.size()) return false;
    int hi = hex(in[i + 1]);
    int lo = hex(in[i + 2]);
    if (hi < 0 || lo < 0) return false;
    out->push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return true;
}

std::string CanonicalUri(std::string_view raw_path) {
  if (raw_path.empty()) return "/";
  std::string out;
  UriEncode(raw_path, /*keep_slash=*/true, &out);
  return out;
}

std::string CanonicalQueryString(std::string_view raw_query) {
  if (raw_query.empty()) return "";
  std::vector<std::pair<std::string, std::string>> pairs;
  for (std::string_view part : Split(raw_query, '&')) {
    size_t eq = part.find('=');
    std::string key, value;
    // A malformed escape is signed as sent; the signature then decides.
    if (!PercentDecode(part.substr(0, eq), &key)) {
      key = std::string(part.substr(0, eq));
    }
    if (eq != std::string_view::npos &&
        !PercentDecode(part.substr(eq + 1), &value)) {
      value = std::string(part.substr(eq + 1));
    }
    std::string k, v;
    UriEncode(key, false, &k);
    UriEncode(value, false, &v);
    pairs.emplace_back(std::move(k), std::move(v));
  }
  std::sort(pairs.begin(), pairs.end());
  std::string out;
  for (const auto& [k, v] : pairs) {
    if (!out.empty()) out.push_back('&');
    out.append(k).append("=").append(v);
  }
  return out;
}

SigV4Result VerifySigV4(const admin::AdminRequest& req,
                        const CredentialSet& creds,
                        std::chrono::system_clock::time_point now,
                        const SigV4Options& options) {
  std::optional<std::string_view> auth = req.Header("authorization");
  if (!auth) {
    if (req.query.find("X-Amz-Signature=") != std::string_view::npos) {
      return Fail("IncompleteSignatureException",
                  "presigned (query-string) requests are not accepted; sign "
                  "with the Authorization header");
    }
    return Fail("MissingAuthenticationTokenException",
                "Missing Authentication Token: this App Mesh API requires "
                "SigV4-signed requests with a key from " +
                    creds.source() +
                    " (set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or a "
                    "profile for the AWS CLI)");
  }
  AuthorizationHeader ah;
  if (!ParseAuthorization(*auth, &ah)) {
    return Fail("IncompleteSignatureException",
                "Authorization header must be AWS4-HMAC-SHA256 with "
                "Credential=, SignedHeaders= and Signature=");
  }
  std::vector<std::string_view> scope = Split(ah.credential, '/');
  if (scope.size() != 5 || scope[4] != "aws4_request") {
    return Fail("IncompleteSignatureException",
                "Credential must be <access key>/<date>/<region>/<service>/"
                "aws4_request, got " +
                    std::string(ah.credential));
  }
  if (scope[3] != options.service) {
    return Fail("InvalidSignatureException",
                "Credential should be scoped to correct service: '" +
                    options.service + "', not '" + std::string(scope[3]) + "'");
  }
  const Credential* cred = creds.Find(scope[0]);
  if (cred == nullptr) {
    return Fail("UnrecognizedClientException",
                "The security token included in the request is invalid: "
                "access key " +
                    std::string(scope[0]) + " is not in " + creds.source());
  }
  std::optional<std::string_view> amz_date = req.Header("x-amz-date");
  std::chrono::system_clock::time_point signed_at;
  if (!amz_date || !ParseAmzDate(Trim(*amz_date), &signed_at)) {
    return Fail("IncompleteSignatureException",
                "X-Amz-Date header missing or not YYYYMMDDTHHMMSSZ");
  }
  std::string_view date_time = Trim(*amz_date);
  if (date_time.substr(0, 8) != scope[1]) {
    return Fail("InvalidSignatureException",
                "Credential date " + std::string(scope[1]) +
                    " does not match X-Amz-Date " + std::string(date_time));
  }
  if (signed_at < now - options.max_clock_skew ||
      signed_at > now + options.max_clock_skew) {
    return Fail("InvalidSignatureException",
                "Signature expired or not yet current: " +
                    std::string(date_time) + " is more than " +
                    std::to_string(options.max_clock_skew.count() / 60) +
                    " min from the agent's time " + FormatAmzDate(now) +
                    "; check the clocks");
  }

  const std::string payload_hash = Sha256Hex(req.body);
  if (std::optional<std::string_view> sent = req.Header("x-amz-content-sha256");
      sent && Trim(*sent) != payload_hash) {
    return Fail("InvalidSignatureException",
                "X-Amz-Content-SHA256 does not match the request body; "
                "unsigned payloads are not accepted");
  }

  // Canonical headers, in the order SignedHeaders lists them (lowercase,
  // sorted by the signer).
  std::string canonical_headers;
  bool has_host = false;
  for (std::string_view name : Split(ah.signed_headers, ';')) {
    if (name == "host") has_host = true;
    std::string joined;
    bool found = false;
    if (req.headers != nullptr) {
      for (const http::HeaderField& f : *req.headers) {
        if (!http::EqualsIgnoreCase(f.name, name)) continue;
        if (found) joined.push_back(',');
        joined.append(CanonicalHeaderValue(f.value));
        found = true;
      }
    }
    if (!found) {
      return Fail(
          "IncompleteSignatureException",
          "signed header '" + std::string(name) + "' is not in the request");
    }
    canonical_headers.append(Lower(name)).append(":").append(joined);
    canonical_headers.push_back('\n');
  }
  if (!has_host) {
    return Fail("IncompleteSignatureException",
                "SignedHeaders must include host");
  }

  std::string canonical_request;
  canonical_request.append(req.method).push_back('\n');
  canonical_request.append(CanonicalUri(req.path)).push_back('\n');
  canonical_request.append(CanonicalQueryString(req.query)).push_back('\n');
  canonical_request.append(canonical_headers).push_back('\n');
  canonical_request.append(ah.signed_headers).push_back('\n');
  canonical_request.append(payload_hash);

  std::string scope_text = std::string(scope[1]) + "/" + std::string(scope[2]) +
                           "/" + std::string(scope[3]) + "/aws4_request";
  std::string string_to_sign = std::string(kAlgorithm) + "\n" +
                               std::string(date_time) + "\n" + scope_text +
                               "\n" + Sha256Hex(canonical_request);
  std::string key =
      SigningKey(cred->secret_access_key, scope[1], scope[2], scope[3]);
  std::string raw = HmacSha256(key, string_to_sign);
  std::string expected =
      Hex(reinterpret_cast<const unsigned char*>(raw.data()), raw.size());
  if (ah.signature.size() != expected.size() ||
      CRYPTO_memcmp(ah.signature.data(), expected.data(), expected.size()) !=
          0) {
    return Fail("InvalidSignatureException",
                "The request signature we calculated does not match the "
                "signature you provided. Check your AWS Secret Access Key "
                "and signing method (access key " +
                    cred->access_key_id + ", profile [" + cred->profile +
                    "] in " + creds.source() + ")");
  }
  SigV4Result ok;
  ok.ok = true;
  ok.credential = cred;
  return ok;
}

}  // namespace nodemesh::api
