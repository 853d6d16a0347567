// AWS Signature Version 2 for S3, server side: the "Authorization: AWS <key>:<signature>" header
// and presigned query strings (AWSAccessKeyId, Signature, Expires). Older clients still make
// them (Debian's boto3 presigns with it by default). SigV4 remains what slipway itself signs
// with; S3ServerOptions::allow_sigv2 turns this off. Pure functions; thread-safe.
#pragma once

#include <chrono>
#include <string>
#include <variant>

#include "storage/sigv4.h"

namespace slipway::storage {

// True when the request carries SigV2 credentials (header or query).
bool IsSignatureV2(const net::HttpRequest& request);

// The string a SigV2 signature signs: method, Content-MD5, Content-Type, the date (or the
// Expires of a presigned URL), the x-amz-* headers and the canonical resource (raw path plus
// the subresources S3 signs; with sign_list_type, list-type too, as older botocore signs it).
std::string StringToSignV2(const net::HttpRequest& request, std::string_view date_or_expires,
                           bool sign_list_type = false);

// base64(HMAC-SHA1(secret, string_to_sign)).
std::string SignV2(std::string_view secret_key, std::string_view string_to_sign);

// Verifies a SigV2 request. The payload is not signed by SigV2: the VerifiedRequest says
// UNSIGNED-PAYLOAD (Content-MD5, when sent, is still checked by the store).
std::variant<VerifiedRequest, AuthFailure> VerifyRequestV2(
    const net::HttpRequest& request, const SecretLookup& secrets,
    std::chrono::system_clock::time_point now);

}  // namespace slipway::storage
