// AWS Signature Version 4 for S3: signing requests (Authorization header), presigning URLs
// (query auth), and verifying both on the server side. Pure functions over strings; no I/O.
//
// S3 specifics that differ from other AWS services and are honoured here: the canonical URI is
// the path URI-encoded once (not twice), and the payload hash is whatever the request declares
// in x-amz-content-sha256 (a hex digest, UNSIGNED-PAYLOAD, or a STREAMING-* marker).
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "base/clock.h"
#include "base/crypto.h"
#include "base/status.h"
#include "net/http.h"

namespace slipway::net {
struct HttpRequest;
}

namespace slipway::storage {

inline constexpr std::string_view kUnsignedPayload = "UNSIGNED-PAYLOAD";
inline constexpr std::string_view kEmptySha256 =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

struct Credentials {
  std::string access_key;
  std::string secret_key;
};

// The pieces of a canonical request. Paths and query values are given as they appear on the
// wire (percent-encoded); they are normalised (decoded, re-encoded with S3's rules, sorted).
struct CanonicalRequestInput {
  std::string method;
  std::string raw_path;   // "/bucket/my%20key"
  std::string raw_query;  // "list-type=2&prefix=a%2Fb" (X-Amz-Signature excluded by caller)
  net::Headers headers;   // at least every header named in signed_headers
  std::vector<std::string> signed_headers;  // lower-case names, sorted
  std::string payload_hash;
};

std::string CanonicalRequest(const CanonicalRequestInput& in);
// "20130524/us-east-1/s3/aws4_request"
std::string CredentialScope(std::string_view date8, std::string_view region,
                            std::string_view service = "s3");
std::string StringToSign(std::string_view amz_date, std::string_view scope,
                         std::string_view canonical_request);
Sha256Digest SigningKey(std::string_view secret_key, std::string_view date8,
                        std::string_view region, std::string_view service = "s3");
// Hex HMAC-SHA256 of string_to_sign under the signing key.
std::string Sign(const Sha256Digest& signing_key, std::string_view string_to_sign);

// aws-chunked bodies (STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]): each chunk is signed with
// Sign(signing_key, ChunkStringToSign(...)) chaining from the previous chunk's signature (the
// first chunk chains from the request's own "seed" signature). chunk_sha256_hex is the hex
// SHA-256 of the chunk's data (kEmptySha256 for the final zero-length chunk).
std::string ChunkStringToSign(std::string_view amz_date, std::string_view scope,
                              std::string_view previous_signature,
                              std::string_view chunk_sha256_hex);
// The trailer chunk's string to sign; canonical_trailer is "name:value\n" per trailing header
// (lower-case names, as sent), and previous_signature is the final zero-length chunk's.
std::string TrailerStringToSign(std::string_view amz_date, std::string_view scope,
                                std::string_view previous_signature,
                                std::string_view canonical_trailer);

// --- client side ------------------------------------------------------------------------------

// Adds Host (if missing), x-amz-date, x-amz-content-sha256 and Authorization to headers.
// Every header present in `headers` at the time of the call is signed.
void SignRequest(std::string_view method, std::string_view url, net::Headers& headers,
                 std::string_view payload_hash, const Credentials& creds, std::string_view region,
                 std::chrono::system_clock::time_point now);

// A presigned URL for method on url, valid for `expires` (1 s .. 7 days), signing only host
// plus the given extra headers (which the user of the URL must then send identically).
std::string Presign(std::string_view method, std::string_view url, const Credentials& creds,
                    std::string_view region, std::chrono::system_clock::time_point now,
                    std::chrono::seconds expires, const net::Headers& extra_signed = {});

// --- server side ------------------------------------------------------------------------------

// An HTTP date: IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT", also with a numeric zone such as
// "-0000"), or the obsolete RFC 850 and asctime forms. False when it is none of them.
bool ParseHttpDate(std::string_view s, std::chrono::system_clock::time_point* out);

// What a verified request told us. For aws-chunked uploads the seed signature and signing key
// let the body decoder verify every chunk's signature.
struct VerifiedRequest {
  std::string access_key;
  std::string payload_hash;    // as declared: hex, UNSIGNED-PAYLOAD or STREAMING-*
  std::string amz_date;        // "20130524T000000Z"
  std::string scope;           // "20130524/us-east-1/s3/aws4_request"
  std::string seed_signature;  // the request's own signature
  Sha256Digest signing_key{};
  bool presigned = false;
};

enum class AuthError {
  kMissing,            // no Authorization header and no X-Amz-Signature: AccessDenied
  kMalformed,          // AuthorizationHeaderMalformed / AuthorizationQueryParametersError
  kUnknownAccessKey,   // InvalidAccessKeyId
  kSignatureMismatch,  // SignatureDoesNotMatch
  kExpired,            // AccessDenied "Request has expired"
  kSkewed,             // RequestTimeTooSkewed (header auth more than 15 min off)
  kWrongRegion,        // AuthorizationHeaderMalformed (region in scope is not ours)
};

struct AuthFailure {
  AuthError error;
  std::string message;  // human-readable detail for the S3 error body
};

// Looks up the secret for an access key; nullopt when the key is unknown.
using SecretLookup = std::function<std::optional<std::string>(std::string_view access_key)>;

// Verifies header auth or presigned query auth of a request.
// Returns the VerifiedRequest or the reason it is refused.
std::variant<VerifiedRequest, AuthFailure> VerifyRequest(const net::HttpRequest& request,
                                                         const SecretLookup& secrets,
                                                         std::string_view region,
                                                         std::chrono::system_clock::time_point now);

}  // namespace slipway::storage
