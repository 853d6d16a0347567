#include "storage/sigv2.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <charconv>
#include <map>
#include <set>
#include <vector>

#include "base/crypto.h"
#include "net/http.h"
#include "net/http_server.h"

namespace slipway::storage {
namespace {

using std::chrono::system_clock;

constexpr auto kMaxSkew = std::chrono::minutes(15);

// The query parameters that are part of the resource a SigV2 signature covers.
const std::set<std::string, std::less<>>& SignedSubresources() {
  static const std::set<std::string, std::less<>> kSet = {"accelerate",
                                                          "acl",
                                                          "analytics",
                                                          "cors",
                                                          "delete",
                                                          "encryption",
                                                          "intelligent-tiering",
                                                          "inventory",
                                                          "legal-hold",
                                                          "lifecycle",
                                                          "location",
                                                          "logging",
                                                          "metrics",
                                                          "notification",
                                                          "object-lock",
                                                          "ownershipControls",
                                                          "partNumber",
                                                          "policy",
                                                          "policyStatus",
                                                          "publicAccessBlock",
                                                          "replication",
                                                          "requestPayment",
                                                          "response-cache-control",
                                                          "response-content-disposition",
                                                          "response-content-encoding",
                                                          "response-content-language",
                                                          "response-content-type",
                                                          "response-expires",
                                                          "restore",
                                                          "retention",
                                                          "select",
                                                          "select-type",
                                                          "tagging",
                                                          "torrent",
                                                          "uploadId",
                                                          "uploads",
                                                          "versionId",
                                                          "versioning",
                                                          "versions",
                                                          "website",
                                                          "attributes"};
  return kSet;
}

std::string_view TrimView(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

AuthFailure Fail(AuthError e, std::string message) { return AuthFailure{e, std::move(message)}; }

}  // namespace

bool IsSignatureV2(const net::HttpRequest& req) {
  if (auto a = req.headers.Get("Authorization"); a && a->starts_with("AWS ")) return true;
  bool key = false, sig = false;
  for (const auto& [name, value] : net::ParseQuery(req.query)) {
    key = key || name == "AWSAccessKeyId";
    sig = sig || name == "Signature";
  }
  return key && sig;
}

std::string StringToSignV2(const net::HttpRequest& req, std::string_view date_or_expires,
                           bool sign_list_type) {
  std::string out = req.method + "\n";
  out += std::string(TrimView(req.headers.GetOr("Content-MD5", ""))) + "\n";
  out += std::string(TrimView(req.headers.GetOr("Content-Type", ""))) + "\n";
  out += std::string(date_or_expires) + "\n";
  // x-amz-* headers: lower-case names, sorted, repeated ones joined by commas.
  std::map<std::string, std::string> amz;
  for (const auto& [name, value] : req.headers) {
    std::string lower = net::ToLower(name);
    if (!lower.starts_with("x-amz-")) continue;
    auto& v = amz[lower];
    if (!v.empty()) v += ',';
    v += TrimView(value);
  }
  for (const auto& [name, value] : amz) out += name + ":" + value + "\n";
  out += req.path;
  std::vector<std::pair<std::string, std::string>> sub;
  bool has_value = false;
  for (std::string_view part : [&] {
         std::vector<std::string_view> parts;
         std::string_view q = req.query;
         while (!q.empty()) {
           size_t amp = q.find('&');
           parts.push_back(q.substr(0, amp));
           q = amp == std::string_view::npos ? std::string_view() : q.substr(amp + 1);
         }
         return parts;
       }()) {
    size_t eq = part.find('=');
    std::string name, value;
    (void)net::UriDecode(part.substr(0, eq), &name);
    if (SignedSubresources().count(name) == 0 && !(sign_list_type && name == "list-type")) {
      continue;
    }
    has_value = eq != std::string_view::npos;
    if (has_value) (void)net::UriDecode(part.substr(eq + 1), &value);
    sub.emplace_back(name, has_value ? "=" + value : "");
  }
  std::sort(sub.begin(), sub.end());
  for (size_t i = 0; i < sub.size(); ++i) {
    out += i == 0 ? '?' : '&';
    out += sub[i].first + sub[i].second;
  }
  return out;
}

std::string SignV2(std::string_view secret_key, std::string_view string_to_sign) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha1(), secret_key.data(), static_cast<int>(secret_key.size()),
       reinterpret_cast<const unsigned char*>(string_to_sign.data()), string_to_sign.size(), mac,
       &len);
  return Base64Encode(std::string_view(reinterpret_cast<const char*>(mac), len));
}

std::variant<VerifiedRequest, AuthFailure> VerifyRequestV2(const net::HttpRequest& req,
                                                           const SecretLookup& secrets,
                                                           system_clock::time_point now) {
  std::string access_key, signature, date_field;
  bool presigned = false;
  if (auto a = req.headers.Get("Authorization"); a && a->starts_with("AWS ")) {
    std::string_view cred = a->substr(4);
    size_t colon = cred.rfind(':');
    if (colon == std::string_view::npos || colon == 0 || colon + 1 == cred.size()) {
      return Fail(AuthError::kMalformed,
                  "The authorization header is malformed; Signature Version 2 expects "
                  "'AWS <access key>:<signature>'.");
    }
    access_key = std::string(TrimView(cred.substr(0, colon)));
    signature = std::string(TrimView(cred.substr(colon + 1)));
    // With x-amz-date, the Date line of the string to sign is empty.
    std::string_view when;
    if (auto x = req.headers.Get("x-amz-date")) {
      when = *x;
    } else if (auto d = req.headers.Get("Date")) {
      when = *d;
      date_field = std::string(TrimView(*d));
    } else {
      return Fail(AuthError::kMissing,
                  "AWS authentication requires a valid Date or x-amz-date header; send one.");
    }
    system_clock::time_point t;
    if (!ParseHttpDate(when, &t)) {
      return Fail(AuthError::kMissing,
                  "AWS authentication requires a valid Date or x-amz-date "
                  "header; '" +
                      std::string(when) + "' is not an HTTP date.");
    }
    if (now - t > kMaxSkew || t - now > kMaxSkew) {
      return Fail(AuthError::kSkewed, "The difference between the request time (" +
                                          FormatHttpDate(t) + ") and the server time (" +
                                          FormatHttpDate(now) +
                                          ") is more than 15 minutes; correct the client's clock.");
    }
  } else {
    presigned = true;
    std::string expires;
    for (const auto& [name, value] : net::ParseQuery(req.query)) {
      if (name == "AWSAccessKeyId") access_key = value;
      if (name == "Signature") signature = value;
      if (name == "Expires") expires = value;
    }
    int64_t e = 0;
    auto [ptr, ec] = std::from_chars(expires.data(), expires.data() + expires.size(), e);
    if (expires.empty() || ec != std::errc() || ptr != expires.data() + expires.size()) {
      return Fail(AuthError::kMalformed,
                  "Query-string authentication requires the Signature, Expires and "
                  "AWSAccessKeyId parameters; presign the URL again.");
    }
    // Compared as seconds: an Expires far outside the years a time point holds must not
    // overflow the conversion.
    if (e < static_cast<int64_t>(system_clock::to_time_t(now))) {
      system_clock::time_point until;
      std::string when = TimePointFromTimeT(static_cast<time_t>(e), &until)
                             ? FormatHttpDate(until)
                             : "Expires=" + expires;
      return Fail(AuthError::kExpired, "Request has expired: the presigned URL was valid until " +
                                           when + "; ask for a new one.");
    }
    date_field = expires;
  }
  auto secret = secrets(access_key);
  if (!secret) {
    return Fail(AuthError::kUnknownAccessKey,
                "The AWS Access Key Id you provided ('" + access_key +
                    "') does not exist in our records; check the credentials the client uses.");
  }
  // Signers differ in two details S3 tolerates: a bucket's resource is "/bucket/" to some
  // (botocore) though they send "/bucket", and older botocore signs list-type. Each variant is
  // tried; all of them sign the same request.
  bool match = false;
  bool bucket_only = req.path.size() > 1 && req.path.find('/', 1) == std::string::npos;
  for (bool slash : {false, true}) {
    if (slash && !bucket_only) continue;
    for (bool list_type : {false, true}) {
      net::HttpRequest variant = req;
      if (slash) variant.path += '/';
      std::string sts = StringToSignV2(variant, date_field, list_type);
      match = match || ConstantTimeEquals(SignV2(*secret, sts), signature);
    }
  }
  if (!match) {
    return Fail(AuthError::kSignatureMismatch,
                "The request signature we calculated does not match the signature you provided; "
                "check your secret key and signing method.");
  }
  VerifiedRequest v;
  v.access_key = access_key;
  v.payload_hash = std::string(kUnsignedPayload);
  v.seed_signature = signature;
  v.presigned = presigned;
  return v;
}

}  // namespace slipway::storage
