// Operations served (path-style only: http://host:port/<bucket>/<key>):
//   GET /                                  ListBuckets
//   PUT /b, HEAD /b, DELETE /b             CreateBucket, HeadBucket, DeleteBucket
//   GET /b?list-type=2                     ListObjectsV2 (EncodingType=url supported)
//   GET /b                                 ListObjects (v1)
//   GET /b?location, ?versioning, ?acl     GetBucketLocation, GetBucketVersioning, GetBucketAcl
//   GET /b?versions                        ListObjectVersions (every object is version "null")
//   GET /b?uploads                         ListMultipartUploads
//   POST /b?delete                         DeleteObjects (with per-object conditions)
//   PUT /b/k, GET /b/k, HEAD /b/k, DELETE /b/k   with Range, partNumber and conditions
//   PUT /b/k + x-amz-copy-source            CopyObject
//   GET /b/k?acl, PUT /b/k?acl, PUT /b?acl  the owner's FULL_CONTROL, canned "private" only
//   POST /b/k?uploads, PUT /b/k?partNumber=N&uploadId=U (+ x-amz-copy-source: UploadPartCopy),
//   GET /b/k?uploadId=U (ListParts), POST /b/k?uploadId=U, DELETE /b/k?uploadId=U
//   GET/PUT/DELETE /b/k?tagging            object tagging (GET /b?tagging: NoSuchTagSet)
// Anything else S3 has (lifecycle, policies, ...) answers NotImplemented naming it, and
// so do headers asking for what the store does not do (encryption, grants, object lock): they
// are never silently ignored. docs/s3-compatibility.md lists both.
//
// Order of work for every request: authenticate (SigV4 or SigV2, before a byte of the body is
// read), refuse unimplemented headers, route, refuse what can be refused from the headers alone
// (size, length, conditions), then stream the body through its decoder and checks into the
// store, which commits nothing unless every check passed.
#include "storage/s3_server.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <algorithm>
#include <charconv>
#include <limits>
#include <map>
#include <set>

#include "base/clock.h"
#include "base/crypto.h"
#include "base/metrics.h"
#include "base/ops_endpoints.h"
#include "net/http_server.h"
#include "net/ops_http.h"
#include "net/recording_writer.h"
#include "storage/s3_metrics.h"
#include "storage/aws_chunked.h"
#include "storage/object_store.h"
#include "storage/s3_xml.h"
#include "storage/sigv2.h"
#include "storage/sigv4.h"

namespace slipway::storage {
namespace {

using net::BodyReader;
using net::Headers;
using net::HttpRequest;
using net::ResponseWriter;

constexpr size_t kSmallBodyLimit = 4 << 20;  // request XML documents
constexpr size_t kMaxUserMetadataBytes = 2048;  // S3's limit on x-amz-meta-* names and values

// User metadata beyond US-ASCII, as S3 treats it ("Working with object metadata" in the S3
// user guide): a value sent as RFC 2047 encoded-words (=?UTF-8?B?...?= or =?UTF-8?Q?...?=,
// which is how the SDKs and the AWS CLI must send it, headers being ASCII) is decoded before it
// is stored, and a stored value with bytes beyond US-ASCII is returned RFC 2047-encoded
// (=?UTF-8?B?<base64>?=). ASCII values are stored and returned as they are.
std::optional<std::string> DecodeEncodedWord(std::string_view word) {
  if (!word.starts_with("=?") || !word.ends_with("?=") || word.size() < 8) return std::nullopt;
  std::string_view inner = word.substr(2, word.size() - 4);
  size_t q1 = inner.find('?');
  if (q1 == std::string_view::npos || q1 + 2 >= inner.size() || inner[q1 + 2] != '?') {
    return std::nullopt;
  }
  std::string_view charset = inner.substr(0, q1);
  if (!net::EqualsIgnoreCase(charset, "utf-8") && !net::EqualsIgnoreCase(charset, "us-ascii")) {
    return std::nullopt;
  }
  char encoding = static_cast<char>(std::toupper(static_cast<unsigned char>(inner[q1 + 1])));
  std::string_view text = inner.substr(q1 + 3);
  std::string out;
  if (encoding == 'B') {
    if (!Base64Decode(text, &out)) return std::nullopt;
    return out;
  }
  if (encoding != 'Q') return std::nullopt;
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '_') {
      out += ' ';
    } else if (text[i] == '=') {
      int hi = i + 1 < text.size() ? hex(text[i + 1]) : -1;
      int lo = i + 2 < text.size() ? hex(text[i + 2]) : -1;
      if (hi < 0 || lo < 0) return std::nullopt;
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else {
      out += text[i];
    }
  }
  return out;
}

// A value made only of encoded-words (whitespace between them is dropped, as RFC 2047 says)
// decodes to their text; anything else is kept as sent.
std::string DecodeMetadataValue(std::string_view value) {
  std::string out;
  std::string_view rest = value;
  bool any = false;
  while (!rest.empty()) {
    while (!rest.empty() && (rest.front() == ' ' || rest.front() == '\t')) rest.remove_prefix(1);
    if (rest.empty()) break;
    size_t end = rest.find_first_of(" \t");
    auto word = DecodeEncodedWord(rest.substr(0, end));
    if (!word) return std::string(value);
    out += *word;
    any = true;
    rest = end == std::string_view::npos ? std::string_view() : rest.substr(end);
  }
  return any ? out : std::string(value);
}

std::string EncodeMetadataValue(std::string_view value) {
  bool ascii = std::all_of(value.begin(), value.end(),
                           [](char c) { return static_cast<unsigned char>(c) < 0x80; });
  if (ascii) return std::string(value);
  return "=?UTF-8?B?" + Base64Encode(value) + "?=";
}

// An S3 error on its way to the client.
struct S3Failure {
  S3ErrorCode code;
  std::string message;
};

// Subresources of S3 that this store does not implement; a request naming one must not be
// mistaken for the plain object or bucket operation.
const std::set<std::string, std::less<>>& UnsupportedSubresources() {
  static const std::set<std::string, std::less<>> kSet = {
      "accelerate",     "analytics",
      "cors",           "encryption",        "intelligent-tiering",
      "inventory",      "legal-hold",        "lifecycle",
      "logging",        "metrics",           "notification",
      "object-lock",    "ownershipControls", "policy",
      "policyStatus",   "publicAccessBlock", "replication",
      "requestPayment", "restore",           "retention",
      "select",         "torrent",           "website"};
  return kSet;
}

S3ErrorCode AuthErrorCode(AuthError e) {
  switch (e) {
    case AuthError::kMissing:
      return S3ErrorCode::kAccessDenied;
    case AuthError::kMalformed:
      return S3ErrorCode::kAuthorizationHeaderMalformed;
    case AuthError::kUnknownAccessKey:
      return S3ErrorCode::kInvalidAccessKeyId;
    case AuthError::kSignatureMismatch:
      return S3ErrorCode::kSignatureDoesNotMatch;
    case AuthError::kExpired:
      return S3ErrorCode::kAccessDenied;
    case AuthError::kSkewed:
      return S3ErrorCode::kRequestTimeTooSkewed;
    case AuthError::kWrongRegion:
      return S3ErrorCode::kAuthorizationHeaderMalformed;
  }
  return S3ErrorCode::kAccessDenied;
}

bool IsLowerHex64(std::string_view s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

std::optional<uint64_t> ParseU64(std::string_view s) {
  uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

// The request body as the store should see it: aws-chunked framing removed, and checked
// against every digest the request declared (x-amz-content-sha256, x-amz-checksum-*). The first
// failure is kept with its S3 error code; the store then commits nothing.
class Payload {
 public:
  // checksum_headers: whether x-amz-checksum-* headers describe this body (not so for
  // CompleteMultipartUpload, where they carry the assembled object's checksum).
  Payload(const HttpRequest& req, BodyReader& body, const VerifiedRequest& auth,
          bool checksum_headers = true)
      : req_(req), raw_(body), auth_(auth), checksum_headers_(checksum_headers) {}

  // Prepares decoding; a failure here is answered before any of the body is read.
  std::optional<S3Failure> Open() {
    if (IsStreamingPayload(auth_.payload_hash)) {
      auto dec = AwsChunkedDecoder::Create(raw_, req_.headers, auth_);
      if (!dec.ok()) return FailureFor(dec.status());
      decoder_ = std::move(*dec);
    } else if (IsLowerHex64(auth_.payload_hash)) {
      sha_ = std::make_unique<Sha256Stream>();
    } else if (auth_.payload_hash != kUnsignedPayload) {
      return S3Failure{S3ErrorCode::kInvalidArgument,
                       "x-amz-content-sha256 must be a lower-case hex SHA-256, UNSIGNED-PAYLOAD "
                       "or a STREAMING-* value; sign the request again."};
    }
    // A whole-body checksum sent as a header (not as an aws-chunked trailer).
    for (const auto& [name, value] : req_.headers) {
      auto alg = ChecksumFromHeaderName(name);
      if (alg && !decoder_ && checksum_headers_) {
        checksum_ = std::make_unique<PayloadChecksum>(*alg);
        checksum_name_ = net::ToLower(name);
        expected_checksum_ = value;
      }
    }
    return std::nullopt;
  }

  Result<size_t> Read(char* buf, size_t n) {
    BodyReader& src = decoder_ ? static_cast<BodyReader&>(*decoder_) : raw_;
    auto r = src.Read(buf, n);
    if (!r.ok()) {
      failure_ = decoder_ ? FailureFor(r.status()) : TransportFailure(r.status());
      return r.status();
    }
    if (*r > 0) {
      if (sha_) sha_->Update(buf, *r);
      if (checksum_) checksum_->Update(std::string_view(buf, *r));
      return r;
    }
    if (sha_ && sha_->FinishHex() != auth_.payload_hash) {
      failure_ = S3Failure{S3ErrorCode::kXAmzContentSHA256Mismatch,
                           "The provided 'x-amz-content-sha256' header does not match what was "
                           "computed; send the body the request was signed for."};
      return Status::DataLoss(failure_->message);
    }
    if (checksum_ && computed_) {
      expected_checksum_ = checksum_->FinishBase64();
    } else if (checksum_ && checksum_->FinishBase64() != expected_checksum_) {
      failure_ = S3Failure{S3ErrorCode::kBadDigest, "The " + checksum_name_ +
                                                        " you specified did not match the "
                                                        "calculated checksum; send the body "
                                                        "again."};
      return Status::DataLoss(failure_->message);
    }
    return r;
  }

  BodySource Source() {
    return [this](char* buf, size_t n) { return Read(buf, n); };
  }

  const std::optional<S3Failure>& failure() const { return failure_; }

  // The checksum the client sends with the body, as a header or an aws-chunked trailer.
  std::optional<ChecksumAlgorithm> DeclaredChecksum() const {
    if (checksum_) return checksum_->algorithm();
    if (auto trailer = req_.headers.Get("x-amz-trailer")) {
      std::string name(*trailer);
      std::erase(name, ' ');
      if (auto alg = ChecksumFromHeaderName(name)) return alg;
    }
    for (const auto& [name, value] : req_.headers) {
      if (auto alg = ChecksumFromHeaderName(name)) return alg;
    }
    return std::nullopt;
  }

  // Computes a checksum the client did not send, to store with the body (S3 does so for the
  // parts of a FULL_OBJECT upload). Before the first Read.
  void ComputeChecksum(ChecksumAlgorithm algorithm) {
    checksum_ = std::make_unique<PayloadChecksum>(algorithm);
    checksum_name_ = std::string(ChecksumHeaderName(algorithm));
    computed_ = true;
  }

  // Checksums the client sent and we verified, to echo as S3 does.
  Headers VerifiedChecksums() const {
    Headers h;
    if (checksum_) h.Add(checksum_name_, expected_checksum_);
    if (decoder_) {
      for (const auto& [name, value] : decoder_->trailers()) {
        if (ChecksumFromHeaderName(name)) h.Add(net::ToLower(name), value);
      }
    }
    return h;
  }

 private:
  // Errors of the aws-chunked decoder, as its header documents them.
  static S3Failure FailureFor(const Status& st) {
    switch (st.code()) {
      case Code::kPermissionDenied:
        return {S3ErrorCode::kSignatureDoesNotMatch, st.message()};
      case Code::kDataLoss:
        return {S3ErrorCode::kBadDigest, st.message()};
      case Code::kInvalidArgument:
        return {S3ErrorCode::kIncompleteBody, st.message()};
      case Code::kUnimplemented:
        return {S3ErrorCode::kNotImplemented, st.message()};
      default:
        return TransportFailure(st);
    }
  }
  static S3Failure TransportFailure(const Status& st) {
    return {S3ErrorCode::kIncompleteBody, "The request body could not be read completely (" +
                                              st.message() +
                                              "); nothing was stored, send the request again."};
  }

  const HttpRequest& req_;
  BodyReader& raw_;
  const VerifiedRequest& auth_;
  std::unique_ptr<AwsChunkedDecoder> decoder_;
  std::unique_ptr<Sha256Stream> sha_;
  std::unique_ptr<PayloadChecksum> checksum_;
  std::string checksum_name_;
  std::string expected_checksum_;
  bool checksum_headers_ = true;
  bool computed_ = false;
  std::optional<S3Failure> failure_;
};

// A body source that also adds what passes through it to a checksum (copies, which have no
// client checksum to verify).
BodySource ChecksummedSource(BodySource source, PayloadChecksum& sum) {
  return [source = std::move(source), &sum](char* buf, size_t n) -> Result<size_t> {
    auto r = source(buf, n);
    if (r.ok() && *r > 0) sum.Update(std::string_view(buf, *r));
    return r;
  };
}

// A multipart upload's checksum, as CreateMultipartUpload declared it (x-amz-checksum-algorithm
// and x-amz-checksum-type) and its store record keeps it.
struct UploadChecksum {
  std::optional<ChecksumAlgorithm> algorithm;
  bool full_object = false;

  static UploadChecksum Of(const MultipartUploadInfo& upload) {
    return {ChecksumFromAlgorithmName(upload.checksum_algorithm),
            upload.checksum_type == kFullObject};
  }
  std::string_view type() const { return full_object ? kFullObject : kComposite; }
  // "crc32", as S3's error messages name it; "null" for none.
  std::string LowerName() const {
    return algorithm ? net::ToLower(ChecksumAlgorithmName(*algorithm)) : "null";
  }
  static constexpr std::string_view kFullObject = "FULL_OBJECT";
  static constexpr std::string_view kComposite = "COMPOSITE";
};

// Everything about one request the handlers need.
struct Call {
  Call(const HttpRequest& r, BodyReader& b, ResponseWriter& w, std::string id)
      : req(r), body(b), resp(w), request_id(std::move(id)) {}

  const HttpRequest& req;
  BodyReader& body;
  ResponseWriter& resp;
  std::string request_id;
  std::string bucket;
  std::string key;
  bool has_key = false;
  std::multimap<std::string, std::string, std::less<>> query;
  VerifiedRequest auth;
  int status = 0;  // for the log line
  std::string error_code;
  std::string error_message;

  bool Has(std::string_view name) const { return query.find(name) != query.end(); }
  std::string Param(std::string_view name) const {
    auto it = query.find(name);
    return it == query.end() ? std::string() : it->second;
  }
  std::string Resource() const { return req.path; }
};

class S3ServerImpl final : public S3Server {
 public:
  explicit S3ServerImpl(S3ServerOptions options) : options_(std::move(options)) {}
  ~S3ServerImpl() override { Shutdown(); }

  Status Init() {
    if (options_.access_key.empty() || options_.secret_key.empty()) {
      return Status::InvalidArgument(
          "the object store needs credentials: set --access-key and --secret-key (or "
          "S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY)");
    }
    ObjectStore::Options so;
    so.data_dir = options_.data_dir;
    so.max_object_size = options_.max_object_size;
    SLIPWAY_ASSIGN_OR_RETURN(store_, ObjectStore::Open(so));
    metrics::AddProcessMetrics(registry_, "s3");
    ops_.registry = &registry_;
    ops_.ready = [this] { return Ready(); };
    net::HttpServer::Options ho;
    ho.listen = options_.listen;
    SLIPWAY_ASSIGN_OR_RETURN(
        http_, net::HttpServer::Start(ho, [this](const HttpRequest& req, BodyReader& body,
                                                 ResponseWriter& resp) { Serve(req, body, resp); }));
    return Status::Ok();
  }

  uint16_t port() const override { return http_->port(); }
  std::string endpoint() const override { return "http://" + http_->address(); }
  void Shutdown() override {
    if (http_) http_->Shutdown();
  }

 private:
  // The operational endpoints for unsigned requests; every other request is S3, counted.
  void Serve(const HttpRequest& req, BodyReader& body, ResponseWriter& resp) {
    if (IsOpsPath(req.path) && !IsSignedRequest(req) && net::ServeOpsEndpoint(req, resp, ops_)) {
      return;
    }
    auto started = std::chrono::steady_clock::now();
    net::RecordingWriter recorded(resp);
    Handle(req, body, recorded);
    metrics_.RequestServed(
        S3OperationOf(req), recorded.status(), body.bytes_read(), recorded.body_bytes(),
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  }

  // Ready while the data directory can be written: every write and read goes there.
  Status Ready() const {
    if (::access(options_.data_dir.c_str(), R_OK | W_OK | X_OK) != 0) {
      return Status::Unavailable("the data directory " + options_.data_dir +
                                 " cannot be written: " + std::strerror(errno));
    }
    return Status::Ok();
  }

  void Handle(const HttpRequest& req, BodyReader& body, ResponseWriter& resp) {
    auto started = std::chrono::steady_clock::now();
    Call call(req, body, resp, RandomHex(8));
    for (auto& c : call.request_id) c = static_cast<char>(std::toupper(c));
    Dispatch(call);
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                  std::chrono::steady_clock::now() - started)
                  .count();
    // The HTTP server logs every request at debug; refusals are worth a warning with their
    // S3 code, except the 404s that HEAD probes meet routinely.
    bool routine = call.status < 400 || (req.method == "HEAD" && call.status == 404);
    spdlog::log(routine ? spdlog::level::trace : spdlog::level::warn,
                "s3 {} {} -> {} {} ({} ms, {} bytes in, request id {}){}{}", req.method, req.target,
                call.status, call.error_code, ms, body.bytes_read(), call.request_id,
                call.error_message.empty() ? "" : ": ", call.error_message);
  }

  void Dispatch(Call& c) {
    if (!ParsePath(c)) return;
    for (auto& [k, v] : net::ParseQuery(c.req.query)) c.query.emplace(k, v);

    if (!Authenticate(c)) return;
    if (!RefuseUnimplementedHeaders(c)) return;

    for (const auto& [name, value] : c.query) {
      if (UnsupportedSubresources().count(name) > 0) {
        return Error(c, S3ErrorCode::kNotImplemented,
                     "The ?" + name +
                         " subresource is not implemented by slipway's object "
                         "store; use a full S3 service for it.");
      }
    }
    // Buckets are never versioned: "null" is the one version every object has.
    if (c.Has("versionId") && c.Param("versionId") != "null") {
      return Error(c, S3ErrorCode::kNoSuchVersion,
                   "The specified version does not exist: this store keeps no versions but "
                   "\"null\".");
    }
    using Op = S3Operation;
    switch (RouteS3Request(c.req, !c.bucket.empty(), c.has_key)) {
      case Op::kListBuckets:
        return ListBuckets(c);
      case Op::kCreateBucket:
        return CreateBucket(c);
      case Op::kHeadBucket:
        return HeadBucket(c);
      case Op::kDeleteBucket:
        return DeleteBucket(c);
      case Op::kListObjects:
      case Op::kListObjectsV2:
      case Op::kListObjectVersions:
        return ListObjects(c);
      case Op::kGetBucketLocation:
        return GetBucketLocation(c);
      case Op::kListMultipartUploads:
        return ListMultipartUploads(c);
      case Op::kDeleteObjects:
        return DeleteObjects(c);
      case Op::kGetBucketAcl:
      case Op::kPutBucketAcl:
        return BucketAcl(c);
      case Op::kGetBucketTagging:
      case Op::kPutBucketTagging:
      case Op::kDeleteBucketTagging:
        return BucketTagging(c);
      case Op::kGetBucketVersioning:
      case Op::kPutBucketVersioning:
        return BucketVersioning(c);
      case Op::kPutObject:
        return PutObject(c);
      case Op::kCopyObject:
        return CopyObject(c);
      case Op::kGetObject:
      case Op::kHeadObject:
        return GetObject(c);
      case Op::kDeleteObject:
        return DeleteObject(c);
      case Op::kGetObjectAcl:
      case Op::kPutObjectAcl:
        return ObjectAcl(c);
      case Op::kGetObjectTagging:
      case Op::kPutObjectTagging:
      case Op::kDeleteObjectTagging:
        return ObjectTagging(c);
      case Op::kGetObjectAttributes:
        return GetObjectAttributes(c);
      case Op::kCreateMultipartUpload:
        return CreateMultipartUpload(c);
      case Op::kUploadPart:
        return UploadPart(c);
      case Op::kUploadPartCopy:
        return UploadPartCopy(c);
      case Op::kCompleteMultipartUpload:
        return CompleteMultipartUpload(c);
      case Op::kAbortMultipartUpload:
        return AbortMultipartUpload(c);
      case Op::kListParts:
        return ListParts(c);
      case Op::kUnknown:
        return NotAllowed(c);
    }
    NotAllowed(c);
  }

  // SigV4, or SigV2 when allowed; false when the request was refused.
  bool Authenticate(Call& c) {
    auto secrets = [this](std::string_view key) -> std::optional<std::string> {
      if (key == options_.access_key) return options_.secret_key;
      return std::nullopt;
    };
    std::variant<VerifiedRequest, AuthFailure> verified;
    bool query_auth = false;
    if (IsSignatureV2(c.req)) {
      if (!options_.allow_sigv2) {
        Error(c, S3ErrorCode::kAccessDenied,
              "Signature Version 2 is turned off on this object store (--no-sigv2); sign with "
              "Signature Version 4 (for the AWS CLI v1: aws configure set "
              "default.s3.signature_version s3v4).");
        return false;
      }
      query_auth = c.Has("Signature");
      verified = VerifyRequestV2(c.req, secrets, SystemClock().Now());
    } else {
      query_auth =
          c.Has("X-Amz-Signature") || c.Has("X-Amz-Credential") || c.Has("X-Amz-Algorithm");
      verified = VerifyRequest(c.req, secrets, options_.region, SystemClock().Now());
    }
    if (auto* f = std::get_if<AuthFailure>(&verified)) {
      S3ErrorCode code = AuthErrorCode(f->error);
      if (query_auth && code == S3ErrorCode::kAuthorizationHeaderMalformed) {
        code = S3ErrorCode::kAuthorizationQueryParametersError;
      }
      Error(c, code, f->message);
      return false;
    }
    c.auth = std::get<VerifiedRequest>(std::move(verified));
    return true;
  }

  // Headers asking for what this store does not do. Storing the object as if they were absent
  // would make a client believe its data is encrypted, locked or shared when it is not.
  bool RefuseUnimplementedHeaders(Call& c) {
    for (const auto& [name, value] : c.req.headers) {
      std::string lower = net::ToLower(name);
      std::string what;
      if (lower.starts_with("x-amz-server-side-encryption") ||
          lower.starts_with("x-amz-copy-source-server-side-encryption")) {
        what = "server-side encryption";
      } else if (lower.starts_with("x-amz-grant-")) {
        what = "ACL grants";
      } else if (lower.starts_with("x-amz-object-lock-") ||
                 (lower == "x-amz-bucket-object-lock-enabled" &&
                  !net::EqualsIgnoreCase(value, "false"))) {
        what = "object lock";
      } else if (lower == "x-amz-website-redirect-location") {
        what = "website redirects";
      } else if (lower == "x-amz-acl") {
        if (value == "private" || value == "bucket-owner-full-control") continue;
        static const std::set<std::string, std::less<>> kCanned = {
            "public-read",   "public-read-write", "authenticated-read",
            "aws-exec-read", "bucket-owner-read", "log-delivery-write"};
        if (kCanned.count(value) == 0) {
          Error(c, S3ErrorCode::kInvalidArgument,
                "The canned ACL '" + value +
                    "' is not one S3 knows; use private (the only one this store grants).");
          return false;
        }
        what = "the canned ACL " + value;
      } else {
        continue;
      }
      Error(c, S3ErrorCode::kNotImplemented,
            "A header you provided implies functionality that is not implemented: " + name + " (" +
                what +
                " is not supported by slipway's object store); send the request without it.");
      return false;
    }
    return true;
  }

  // "/bucket/some/key" -> bucket, key (decoded). Only path-style addressing.
  bool ParsePath(Call& c) {
    std::string path;
    if (c.req.path.empty() || c.req.path[0] != '/' || !net::UriDecode(c.req.path, &path)) {
      Error(c, S3ErrorCode::kInvalidRequest,
            "The request path is not a valid percent-encoded path; encode the key as RFC 3986 "
            "requires.");
      return false;
    }
    std::string_view rest = std::string_view(path).substr(1);
    size_t slash = rest.find('/');
    c.bucket = std::string(rest.substr(0, slash));
    if (slash != std::string_view::npos && slash + 1 < rest.size()) {
      c.key = std::string(rest.substr(slash + 1));
      c.has_key = true;
    }
    return true;
  }

  // --- responses ------------------------------------------------------------------------------

  Headers BaseHeaders(const Call& c) {
    Headers h;
    h.Add("x-amz-request-id", c.request_id);
    h.Add("x-amz-id-2", c.request_id);
    h.Add("Server", "slipway");
    return h;
  }

  void Error(Call& c, S3ErrorCode code, std::string_view message) {
    c.status = S3ErrorStatus(code);
    c.error_code = std::string(S3ErrorName(code));
    c.error_message = std::string(message);
    if (c.resp.head_written()) return;  // too late to say more: the connection will be cut
    Headers h = BaseHeaders(c);
    if (c.req.method == "HEAD") {  // HEAD answers carry no body, only the status
      (void)c.resp.WriteHead(c.status, h, 0);
      (void)c.resp.Finish();
      return;
    }
    h.Add("Content-Type", "application/xml");
    (void)c.resp.Send(c.status, h, ErrorXml(code, message, c.Resource(), c.request_id));
  }

  void NotAllowed(Call& c) {
    Error(c, S3ErrorCode::kMethodNotAllowed,
          "The specified method is not allowed against this resource; see the operations "
          "slipway's object store serves.");
  }

  void Xml(Call& c, int status, const std::string& xml, Headers extra = {}) {
    Headers h = BaseHeaders(c);
    for (const auto& [k, v] : extra) h.Add(k, v);
    h.Add("Content-Type", "application/xml");
    c.status = status;
    (void)c.resp.Send(status, h, xml);
  }

  void Empty(Call& c, int status, Headers extra = {}) {
    Headers h = BaseHeaders(c);
    for (const auto& [k, v] : extra) h.Add(k, v);
    c.status = status;
    (void)c.resp.WriteHead(status, h, 0);
    (void)c.resp.Finish();
  }

  // The S3 error for a store failure, in the context of the operation that met it.
  enum class Op { kBucket, kCreateBucket, kDeleteBucket, kObject, kGet, kUpload, kComplete };
  void StoreError(Call& c, const Status& st, Op op) {
    S3ErrorCode code = S3ErrorCode::kInternalError;
    switch (st.code()) {
      case Code::kNotFound:
        if (op == Op::kBucket || op == Op::kCreateBucket || op == Op::kDeleteBucket ||
            !store_->BucketExists(c.bucket)) {
          code = S3ErrorCode::kNoSuchBucket;
        } else if (op == Op::kUpload || op == Op::kComplete) {
          code = S3ErrorCode::kNoSuchUpload;
        } else {
          code = S3ErrorCode::kNoSuchKey;
        }
        break;
      case Code::kAlreadyExists:
        code = S3ErrorCode::kBucketAlreadyOwnedByYou;
        break;
      case Code::kFailedPrecondition:
        code = op == Op::kComplete ? S3ErrorCode::kEntityTooSmall : S3ErrorCode::kBucketNotEmpty;
        break;
      case Code::kInvalidArgument:
        code = op == Op::kCreateBucket ? S3ErrorCode::kInvalidBucketName
               : op == Op::kComplete   ? S3ErrorCode::kInvalidPart
                                       : S3ErrorCode::kInvalidArgument;
        break;
      case Code::kOutOfRange:
        code = op == Op::kComplete ? S3ErrorCode::kInvalidPartOrder : S3ErrorCode::kInvalidRange;
        break;
      case Code::kResourceExhausted:
        code = S3ErrorCode::kEntityTooLarge;
        break;
      case Code::kDataLoss:
        code = S3ErrorCode::kBadDigest;
        break;
      case Code::kAborted:
        code = S3ErrorCode::kPreconditionFailed;
        break;
      default:
        spdlog::warn("s3 {} {}: {}", c.req.method, c.req.target, st.ToString());
        code = S3ErrorCode::kInternalError;
    }
    std::string message = st.message();
    if (code == S3ErrorCode::kInternalError) {
      message = "The object store failed: " + st.message();
    }
    Error(c, code, message);
  }

  // Bucket names are checked before any store call so that a bad name reads as such.
  bool CheckBucketName(Call& c) {
    Status st = ValidateBucketName(c.bucket);
    if (st.ok()) return true;
    Error(c, S3ErrorCode::kInvalidBucketName, st.message());
    return false;
  }

  // --- request bodies -------------------------------------------------------------------------

  // Refuses from the headers alone what must be refused before a byte of the body is read.
  std::optional<S3Failure> CheckDeclaredLength(const Call& c) {
    std::optional<uint64_t> declared = c.req.content_length;
    if (auto d = c.req.headers.Get("x-amz-decoded-content-length")) {
      declared = ParseU64(*d);
      if (!declared) {
        return S3Failure{S3ErrorCode::kInvalidArgument,
                         "x-amz-decoded-content-length is not a number; send the decoded length "
                         "of the body."};
      }
    } else if (IsStreamingPayload(c.auth.payload_hash) && c.req.content_length) {
      declared.reset();  // the encoded length says nothing exact about the object's size
    }
    if (!c.req.content_length && !c.req.chunked) {
      return S3Failure{S3ErrorCode::kMissingContentLength,
                       "You must provide the Content-Length HTTP header."};
    }
    if (declared && *declared > options_.max_object_size) {
      return S3Failure{S3ErrorCode::kEntityTooLarge,
                       "Your proposed upload of " + std::to_string(*declared) +
                           " bytes exceeds the maximum allowed object size of " +
                           std::to_string(options_.max_object_size) +
                           " bytes; upload a smaller object or raise --max-object-size."};
    }
    return std::nullopt;
  }

  // Content-MD5 as the store wants it: the raw digest.
  std::optional<S3Failure> ContentMd5(const Call& c, PutOptions* opts) {
    auto md5 = c.req.headers.Get("Content-MD5");
    if (!md5) return std::nullopt;
    std::string raw;
    if (!Base64Decode(*md5, &raw) || raw.size() != 16) {
      return S3Failure{S3ErrorCode::kInvalidDigest,
                       "The Content-MD5 you specified was invalid: it is not the base64 of a "
                       "16-byte MD5 digest; send a valid one or none."};
    }
    opts->expected_md5 = raw;
    return std::nullopt;
  }

  // The representation headers S3 stores with an object and returns on GET and HEAD.
  static constexpr std::string_view kStoredHeaders[] = {
      "cache-control", "content-disposition", "content-encoding", "content-language", "expires"};

  // Content type, user metadata and stored headers of a new object, from the request.
  std::optional<S3Failure> ObjectOptions(const Call& c, PutOptions* opts) {
    opts->content_type = c.req.headers.GetOr("Content-Type", "");
    size_t metadata_bytes = 0;
    for (const auto& [name, value] : c.req.headers) {
      std::string lower = net::ToLower(name);
      if (lower.starts_with("x-amz-meta-")) {
        std::string stored = DecodeMetadataValue(value);
        metadata_bytes += lower.size() - 11 + stored.size();
        opts->metadata[lower.substr(11)] = std::move(stored);
      }
    }
    if (metadata_bytes > kMaxUserMetadataBytes) {
      return S3Failure{S3ErrorCode::kMetadataTooLarge,
                       "Your metadata headers exceed the maximum allowed metadata size: " +
                           std::to_string(metadata_bytes) +
                           " bytes of x-amz-meta-* names and values, where 2048 are allowed."};
    }
    if (auto t = c.req.headers.Get("x-amz-tagging")) {
      auto tags = TagsFromQuery(*t);
      if (std::holds_alternative<S3Failure>(tags)) return std::get<S3Failure>(tags);
      opts->tags = std::get<TagMap>(std::move(tags));
    }
    for (std::string_view name : kStoredHeaders) {
      auto v = c.req.headers.Get(name);
      if (!v) continue;
      std::string value(*v);
      if (name == "content-encoding") value = WithoutAwsChunked(value);
      if (!value.empty()) opts->headers[std::string(name)] = value;
    }
    return std::nullopt;
  }

  using TagMap = std::map<std::string, std::string>;

  // S3's limits on tags: at most 10 on an object (50 on a bucket), keys up to 128 characters,
  // values up to 256.
  static constexpr size_t kMaxObjectTags = 10;
  static constexpr size_t kMaxBucketTags = 50;
  static std::optional<S3Failure> CheckTags(const TagMap& tags, size_t max = kMaxObjectTags) {
    auto invalid = [](std::string message) {
      return S3Failure{S3ErrorCode::kInvalidTag, std::move(message)};
    };
    if (tags.size() > max) {
      return invalid(max == kMaxObjectTags ? "Object tags cannot be greater than 10."
                                           : "Bucket tags cannot be greater than 50.");
    }
    for (const auto& [k, v] : tags) {
      if (k.empty() || k.size() > 128) {
        return invalid("The TagKey you have provided is invalid: keys are 1 to 128 characters.");
      }
      if (v.size() > 256) {
        return invalid(
            "The TagValue you have provided is invalid: values are up to 256 "
            "characters.");
      }
    }
    return std::nullopt;
  }

  // x-amz-tagging: "k1=v1&k2=v2", query-encoded.
  static std::variant<TagMap, S3Failure> TagsFromQuery(std::string_view value) {
    TagMap tags;
    for (const auto& [k, v] : net::ParseQuery(value)) {
      if (!tags.emplace(k, v).second) {
        return S3Failure{S3ErrorCode::kInvalidTag,
                         "Cannot provide multiple Tags with the same key: " + k + "."};
      }
    }
    if (auto f = CheckTags(tags)) return *f;
    return tags;
  }

  // aws-chunked is the transfer framing of the request, not an encoding of the object: S3
  // strips it from the Content-Encoding it stores.
  static std::string WithoutAwsChunked(std::string_view list) {
    std::string out;
    ForEachListItem(list, [&out](std::string_view item) {
      if (net::EqualsIgnoreCase(item, "aws-chunked")) return true;
      if (!out.empty()) out += ",";
      out += item;
      return true;
    });
    return out;
  }

  // Calls visit with each non-empty item of a comma-separated header value, spaces trimmed,
  // until it answers false; false then.
  template <typename Visit>
  static bool ForEachListItem(std::string_view list, Visit visit) {
    while (!list.empty()) {
      size_t comma = list.find(',');
      std::string_view item = list.substr(0, comma);
      while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
      while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
      if (!item.empty() && !visit(item)) return false;
      list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
    }
    return true;
  }

  // If-None-Match: * and If-Match on a write (PutObject, CompleteMultipartUpload).
  std::optional<S3Failure> WriteConditionsFrom(const Call& c, WriteConditions* out) {
    if (auto inm = c.req.headers.Get("If-None-Match")) {
      if (*inm != "*") {
        return S3Failure{S3ErrorCode::kNotImplemented,
                         "A header you provided implies functionality that is not implemented: "
                         "If-None-Match on a write accepts only '*' (never overwrite)."};
      }
      out->if_none_match_any = true;
    }
    if (auto im = c.req.headers.Get("If-Match")) out->if_match = std::string(*im);
    return std::nullopt;
  }

  // A small verified request body (an XML document), read whole.
  Result<std::string> ReadDocument(Call& c, std::optional<S3Failure>* failure,
                                   bool checksum_headers = true) {
    Payload payload(c.req, c.body, c.auth, checksum_headers);
    if ((*failure = payload.Open())) return Status::InvalidArgument("refused");
    std::string out;
    char buf[16384];
    for (;;) {
      auto n = payload.Read(buf, sizeof buf);
      if (!n.ok()) {
        *failure = payload.failure();
        return n.status();
      }
      if (*n == 0) return out;
      out.append(buf, *n);
      if (out.size() > kSmallBodyLimit) {
        *failure = S3Failure{S3ErrorCode::kEntityTooLarge,
                             "The request document is larger than 4 MiB; send a smaller one."};
        return Status::ResourceExhausted("too large");
      }
    }
  }

  // --- buckets ----------------------------------------------------------------------------------

  // ListBuckets, paged by max-buckets and a continuation token naming the last bucket listed.
  void ListBuckets(Call& c) {
    auto max = IntParam(c, "max-buckets", 10000, 1 << 30);
    if (!max) return;
    if (c.Has("max-buckets") && (*max < 1 || *max > 10000)) {
      return Error(c, S3ErrorCode::kInvalidArgument,
                   "max-buckets must be an integer from 1 to 10000.");
    }
    std::string after;
    if (std::string token = c.Param("continuation-token"); !token.empty()) {
      if (!Base64Decode(token, &after) || !after.starts_with("B")) {
        return Error(c, S3ErrorCode::kInvalidArgument,
                     "The continuation token provided is incorrect; list again without it.");
      }
      after.erase(0, 1);
    }
    std::string prefix = c.Param("prefix");
    std::vector<BucketInfo> page;
    std::string next;
    for (auto& b : store_->ListBuckets()) {  // sorted by name
      if (!after.empty() && b.name <= after) continue;
      if (!b.name.starts_with(prefix)) continue;
      if (static_cast<int>(page.size()) == *max) {
        next = Base64Encode("B" + page.back().name);
        break;
      }
      page.push_back(std::move(b));
    }
    std::optional<std::string> echoed;
    if (c.Has("prefix")) echoed = prefix;
    Xml(c, 200, ListBucketsXml(page, options_.access_key, next, echoed));
  }

  void CreateBucket(Call& c) {
    if (!CheckBucketName(c)) return;
    // The optional CreateBucketConfiguration names a region; the store has only one.
    Status st = store_->CreateBucket(c.bucket);
    // In us-east-1 S3 answers a CreateBucket of a bucket you own with success, keeping its
    // contents; in every other region with BucketAlreadyOwnedByYou.
    if (st.code() == Code::kAlreadyExists && options_.region == "us-east-1") st = Status::Ok();
    if (!st.ok()) return StoreError(c, st, Op::kCreateBucket);
    Headers h;
    h.Add("Location", "/" + c.bucket);
    Empty(c, 200, h);
  }

  void HeadBucket(Call& c) {
    if (!store_->BucketExists(c.bucket)) {
      return Error(c, S3ErrorCode::kNoSuchBucket, "The specified bucket does not exist.");
    }
    Headers h;
    h.Add("x-amz-bucket-region", options_.region);
    Empty(c, 200, h);
  }

  void DeleteBucket(Call& c) {
    Status st = store_->DeleteBucket(c.bucket);
    if (!st.ok()) return StoreError(c, st, Op::kDeleteBucket);
    Empty(c, 204);
  }

  void GetBucketLocation(Call& c) {
    if (!store_->BucketExists(c.bucket)) {
      return Error(c, S3ErrorCode::kNoSuchBucket, "The specified bucket does not exist.");
    }
    Xml(c, 200, LocationConstraintXml(options_.region));
  }

  void ListObjects(Call& c) {
    ListObjectsV2Request lr;
    lr.bucket = c.bucket;
    lr.options.prefix = c.Param("prefix");
    lr.options.delimiter = c.Param("delimiter");
    lr.encoding_type_url = c.Param("encoding-type") == "url";
    if (!c.Param("encoding-type").empty() && !lr.encoding_type_url) {
      return Error(c, S3ErrorCode::kInvalidArgument,
                   "Invalid Encoding Method specified in Request");
    }
    if (c.Has("max-keys")) {
      auto mk = ParseU64(c.Param("max-keys"));
      if (!mk) {
        return Error(c, S3ErrorCode::kInvalidArgument,
                     "max-keys must be a non-negative integer; send a number from 0 to 1000.");
      }
      lr.options.max_keys = static_cast<int>(std::min<uint64_t>(*mk, 1000));
    }
    bool v2 = c.Param("list-type") == "2";
    if (c.Has("versions")) {
      lr.options.start_after = c.Param("key-marker");
      auto result = store_->ListObjects(c.bucket, lr.options);
      if (!result.ok()) return StoreError(c, result.status(), Op::kBucket);
      return Xml(c, 200, ListVersionsXml(lr, *result, lr.options.start_after, options_.access_key));
    }
    // ListObjects (v1) and ListObjectVersions always name the owner, v2 with fetch-owner only.
    if (!v2 || c.Param("fetch-owner") == "true") lr.owner = options_.access_key;
    if (v2) {
      lr.continuation_token_sent = c.Has("continuation-token");
      lr.options.continuation_token = c.Param("continuation-token");
      lr.options.start_after = c.Param("start-after");
    } else {
      lr.options.start_after = c.Param("marker");
    }
    auto result = store_->ListObjects(c.bucket, lr.options);
    if (!result.ok()) return StoreError(c, result.status(), Op::kBucket);
    if (v2) return Xml(c, 200, ListObjectsV2Xml(lr, *result));
    Xml(c, 200, ListObjectsV1Xml(lr, *result));
  }

  // ListObjects (v1) shares the v2 document but for its paging elements.
  static std::string ListObjectsV1Xml(const ListObjectsV2Request& lr, const ListResult& r) {
    std::string xml = ListObjectsV2Xml(lr, r);
    auto cut = [&](std::string_view tag) {
      std::string open = "<" + std::string(tag) + ">", close = "</" + std::string(tag) + ">";
      size_t a = xml.find(open);
      if (a == std::string::npos) return;
      size_t b = xml.find(close, a);
      xml.erase(a, b + close.size() - a);
    };
    cut("KeyCount");
    cut("NextContinuationToken");
    cut("StartAfter");
    std::string marker = "<Marker>" + XmlEscape(lr.options.start_after) + "</Marker>";
    if (r.is_truncated) {
      // NextMarker names the last entry returned, which v1 clients pass back as marker.
      std::string last = r.objects.empty() ? "" : r.objects.back().key;
      if (!r.common_prefixes.empty() && r.common_prefixes.back() > last) {
        last = r.common_prefixes.back();
      }
      marker += "<NextMarker>" + XmlEscape(last) + "</NextMarker>";
    }
    size_t at = xml.find("<MaxKeys>");
    xml.insert(at, marker);
    return xml;
  }

  void DeleteObjects(Call& c) {
    std::optional<S3Failure> failure;
    auto doc = ReadDocument(c, &failure);
    if (!doc.ok()) return Error(c, failure->code, failure->message);
    auto req = ParseDeleteObjects(*doc);
    if (!req.ok()) return Error(c, S3ErrorCode::kMalformedXML, req.status().message());
    if (!store_->BucketExists(c.bucket)) {
      return Error(c, S3ErrorCode::kNoSuchBucket, "The specified bucket does not exist.");
    }
    std::vector<std::string> deleted;
    std::vector<DeleteObjectsFailure> failed;
    for (size_t i = 0; i < req->keys.size(); ++i) {
      const std::string& key = req->keys[i];
      Status st = store_->DeleteObject(c.bucket, key, req->conditions[i]);
      if (st.ok()) {
        if (!req->quiet) deleted.push_back(key);
        continue;
      }
      S3ErrorCode code = S3ErrorCode::kInternalError;
      if (st.code() == Code::kInvalidArgument) code = S3ErrorCode::kInvalidArgument;
      if (st.code() == Code::kAborted) code = S3ErrorCode::kPreconditionFailed;
      if (st.code() == Code::kNotFound) code = S3ErrorCode::kNoSuchKey;
      failed.push_back({key, code, st.message()});
    }
    Xml(c, 200, DeleteResultXml(deleted, failed));
  }

  // --- objects
  // ------------------------------------------------------------------------------------

  // Headers describing a stored object, on GET, HEAD and PUT answers.
  static void ObjectHeaders(const ObjectInfo& info, Headers& h) {
    h.Add("ETag", info.etag);
    h.Add("Last-Modified", FormatHttpDate(info.last_modified));
    h.Add("Content-Type", info.content_type);
    h.Add("Accept-Ranges", "bytes");
    for (const auto& [k, v] : info.headers) h.Add(k, v);
    for (const auto& [k, v] : info.metadata) h.Add("x-amz-meta-" + k, EncodeMetadataValue(v));
    if (!info.tags.empty()) h.Add("x-amz-tagging-count", std::to_string(info.tags.size()));
  }

  // The outcome of conditional request headers against an object (RFC 9110 section 13.2.2's
  // order, which S3 follows): If-Match, else If-Unmodified-Since, can fail the request (412);
  // If-None-Match, else If-Modified-Since, can make it "not modified" (304 for GET and HEAD,
  // 412 for the x-amz-copy-source-if-* of a copy). Dates that do not parse are ignored.
  enum class Precondition { kProceed, kFailed, kNotModified };
  static Precondition EvaluatePreconditions(const Headers& h, std::string_view prefix,
                                            const ObjectInfo& info) {
    auto get = [&](std::string_view name) {
      return h.Get(std::string(prefix) + std::string(name));
    };
    auto date = [&](std::string_view name) -> std::optional<std::chrono::system_clock::time_point> {
      auto v = get(name);
      std::chrono::system_clock::time_point t;
      if (!v || !ParseHttpDate(*v, &t)) return std::nullopt;
      return t;
    };
    auto modified = std::chrono::floor<std::chrono::seconds>(info.last_modified);
    if (auto im = get("if-match")) {
      if (!EtagListMatches(*im, info.etag)) return Precondition::kFailed;
    } else if (auto ius = date("if-unmodified-since")) {
      if (modified > *ius) return Precondition::kFailed;
    }
    if (auto inm = get("if-none-match")) {
      if (EtagListMatches(*inm, info.etag)) return Precondition::kNotModified;
    } else if (auto ims = date("if-modified-since")) {
      if (modified <= *ims) return Precondition::kNotModified;
    }
    return Precondition::kProceed;
  }

  static constexpr std::string_view kPreconditionMessage =
      "At least one of the pre-conditions you specified did not hold.";

  void PutObject(Call& c) {
    if (!CheckBucketName(c)) return;
    PutOptions opts;
    std::optional<S3Failure> refused = CheckDeclaredLength(c);
    if (!refused) refused = ContentMd5(c, &opts);
    if (!refused) refused = ObjectOptions(c, &opts);
    if (!refused) refused = WriteConditionsFrom(c, &opts.conditions);
    if (refused) return Error(c, refused->code, refused->message);
    if (!store_->BucketExists(c.bucket)) {
      return Error(c, S3ErrorCode::kNoSuchBucket, "The specified bucket does not exist.");
    }
    if (Status st = ValidateObjectKey(c.key); !st.ok()) {
      return Error(c, S3ErrorCode::kInvalidArgument, st.message());
    }
    Payload payload(c.req, c.body, c.auth);
    if (auto f = payload.Open()) return Error(c, f->code, f->message);
    opts.checksums = [&payload] {
      std::map<std::string, std::string> sums;
      for (const auto& [name, value] : payload.VerifiedChecksums()) sums[name] = value;
      return sums;
    };
    auto info = store_->PutObject(c.bucket, c.key, opts, payload.Source());
    if (!info.ok()) {
      if (payload.failure()) return Error(c, payload.failure()->code, payload.failure()->message);
      return StoreError(c, info.status(), Op::kObject);
    }
    Headers h = payload.VerifiedChecksums();
    if (!info->checksums.empty()) h.Add("x-amz-checksum-type", std::string(UploadChecksum::kFullObject));
    h.Add("ETag", info->etag);
    Empty(c, 200, h);
  }

  void GetObject(Call& c) {
    std::optional<int> part_number;
    if (c.Has("partNumber")) {
      auto n = ParseU64(c.Param("partNumber"));
      if (!n || *n < 1 || *n > static_cast<uint64_t>(kMaxPartNumber)) {
        return Error(c, S3ErrorCode::kInvalidArgument,
                     "Part number must be an integer between 1 and 10000, inclusive.");
      }
      if (c.req.headers.Has("Range")) {
        return Error(c, S3ErrorCode::kInvalidRequest,
                     "Cannot specify both Range header and partNumber query parameter.");
      }
      part_number = static_cast<int>(*n);
    }
    // Conditions are evaluated against the whole object before any range applies.
    auto reader = store_->GetObject(c.bucket, c.key);
    if (!reader.ok()) return StoreError(c, reader.status(), Op::kGet);
    const ObjectInfo& info = reader->info();

    switch (EvaluatePreconditions(c.req.headers, "", info)) {
      case Precondition::kFailed:
        return Error(c, S3ErrorCode::kPreconditionFailed, kPreconditionMessage);
      case Precondition::kNotModified: {
        Headers h = BaseHeaders(c);
        h.Add("ETag", info.etag);
        h.Add("Last-Modified", FormatHttpDate(info.last_modified));
        c.status = 304;
        (void)c.resp.WriteHead(304, h, std::nullopt);
        (void)c.resp.Finish();
        return;
      }
      case Precondition::kProceed:
        break;
    }
    Headers h = BaseHeaders(c);
    ObjectHeaders(info, h);
    if (part_number) {
      size_t count = info.part_sizes.size();
      if (count > 0) {
        if (static_cast<size_t>(*part_number) > count) {
          return Error(c, S3ErrorCode::kInvalidPartNumber,
                       "The requested partnumber is not satisfiable: the object has " +
                           std::to_string(count) + " parts.");
        }
        uint64_t offset = 0;
        for (int i = 0; i + 1 < *part_number; ++i) offset += info.part_sizes[i];
        reader->Narrow(offset, info.part_sizes[*part_number - 1]);
        h.Add("x-amz-mp-parts-count", std::to_string(count));
      } else if (*part_number != 1) {
        return Error(c, S3ErrorCode::kInvalidPartNumber,
                     "The requested partnumber is not satisfiable: the object was not uploaded "
                     "in parts, its only part is 1.");
      }
    } else if (auto r = c.req.headers.Get("Range")) {
      if (auto range = ParseRangeHeader(*r)) {
        Status st = ApplyRange(*range, *reader);
        if (!st.ok()) return StoreError(c, st, Op::kGet);
      }
    }
    // Presigned GETs may override response headers, as S3 allows.
    static constexpr std::pair<std::string_view, std::string_view> kOverrides[] = {
        {"response-content-type", "Content-Type"},
        {"response-content-disposition", "Content-Disposition"},
        {"response-content-encoding", "Content-Encoding"},
        {"response-content-language", "Content-Language"},
        {"response-cache-control", "Cache-Control"},
        {"response-expires", "Expires"}};
    for (const auto& [param, header] : kOverrides) {
      if (c.Has(param)) h.Set(header, c.Param(param));
    }
    if (net::EqualsIgnoreCase(c.req.headers.GetOr("x-amz-checksum-mode", ""), "ENABLED")) {
      ChecksumHeaders(info, part_number, reader->partial(), h);
    }
    int status = 200;
    if (reader->partial()) {
      status = 206;
      h.Add("Content-Range", "bytes " + std::to_string(reader->offset()) + "-" +
                                 std::to_string(reader->offset() + reader->length() - 1) + "/" +
                                 std::to_string(info.size));
    }
    c.status = status;
    if (!c.resp.WriteHead(status, h, reader->length()).ok()) return;
    if (c.req.method == "HEAD") {
      (void)c.resp.Finish();
      return;
    }
    // Straight from the page cache to the socket (sendfile).
    if (Status st = c.resp.WriteFile(reader->fd(), reader->offset(), reader->length()); !st.ok()) {
      if (st.code() != Code::kUnavailable) {
        spdlog::warn("s3 GET {}: {}; the response is cut short", c.req.target, st.ToString());
      }
      return;  // the server closes a connection whose body is shorter than announced
    }
    (void)c.resp.Finish();
  }

  // The checksum headers of a GET or HEAD with x-amz-checksum-mode: ENABLED. The stored
  // checksum describes the whole object, so a range gets none; one part of a COMPOSITE
  // multipart object gets that part's checksum (a FULL_OBJECT one has none per part).
  static void ChecksumHeaders(const ObjectInfo& info, std::optional<int> part_number,
                              bool partial, Headers& h) {
    if (info.checksums.empty()) return;
    if (!partial) {
      for (const auto& [name, value] : info.checksums) h.Add(name, value);
      h.Add("x-amz-checksum-type",
            info.checksum_type.empty() ? std::string(UploadChecksum::kFullObject)
                                        : info.checksum_type);
      return;
    }
    if (part_number && info.checksum_type == UploadChecksum::kComposite &&
        static_cast<size_t>(*part_number) <= info.part_checksums.size()) {
      h.Add(info.checksums.begin()->first, info.part_checksums[*part_number - 1]);
    }
  }

  // Resolves a Range header against an open reader (InvalidRange when it starts past the end).
  static Status ApplyRange(const ByteRange& range, ObjectReader& reader) {
    uint64_t size = reader.info().size;
    auto unsatisfiable = [&] {
      return Status::OutOfRange("The requested range is not satisfiable: the object is " +
                                std::to_string(size) + " bytes long; ask for a range inside it.");
    };
    if (range.suffix_length) {
      if (*range.suffix_length == 0 || size == 0) return unsatisfiable();
      uint64_t length = std::min(*range.suffix_length, size);
      reader.Narrow(size - length, length);
      return Status::Ok();
    }
    if (!range.first || *range.first >= size) return unsatisfiable();
    uint64_t last = range.last ? std::min(*range.last, size - 1) : size - 1;
    reader.Narrow(*range.first, last - *range.first + 1);
    return Status::Ok();
  }

  void DeleteObject(Call& c) {
    DeleteConditions cond;
    if (auto im = c.req.headers.Get("If-Match")) cond.if_match = std::string(*im);
    if (auto lm = c.req.headers.Get("x-amz-if-match-last-modified-time")) {
      std::chrono::system_clock::time_point t;
      if (!ParseHttpDate(*lm, &t) && !ParseIso8601(*lm, &t)) {
        return Error(c, S3ErrorCode::kInvalidArgument,
                     "x-amz-if-match-last-modified-time is not a date; send the object's "
                     "Last-Modified as an HTTP date.");
      }
      cond.last_modified = t;
    }
    if (auto sz = c.req.headers.Get("x-amz-if-match-size")) {
      auto n = ParseU64(*sz);
      if (!n) {
        return Error(c, S3ErrorCode::kInvalidArgument,
                     "x-amz-if-match-size is not a number; send the object's size in bytes.");
      }
      cond.size = *n;
    }
    Status st = store_->DeleteObject(c.bucket, c.key, cond);
    if (!st.ok()) return StoreError(c, st, Op::kObject);
    Empty(c, 204);
  }

  // --- copies -----------------------------------------------------------------------------------

  struct CopySource {
    std::string bucket;
    std::string key;
  };

  // x-amz-copy-source: "[/]bucket/key[?versionId=null]", percent-encoded.
  std::optional<CopySource> ParseCopySource(Call& c) {
    std::string raw(c.req.headers.GetOr("x-amz-copy-source", ""));
    std::string version;
    if (size_t q = raw.find("?versionId="); q != std::string::npos) {
      version = raw.substr(q + 11);
      raw.resize(q);
    }
    std::string decoded;
    if (!net::UriDecode(raw, &decoded)) decoded.clear();
    std::string_view v = decoded;
    if (v.starts_with("/")) v.remove_prefix(1);
    size_t slash = v.find('/');
    if (slash == std::string_view::npos || slash == 0 || slash + 1 == v.size()) {
      Error(c, S3ErrorCode::kInvalidArgument,
            "Copy Source must mention the source bucket and key: sourcebucket/sourcekey.");
      return std::nullopt;
    }
    if (!version.empty() && version != "null") {
      Error(c, S3ErrorCode::kNoSuchVersion,
            "The specified version does not exist: this store keeps no versions but \"null\".");
      return std::nullopt;
    }
    return CopySource{std::string(v.substr(0, slash)), std::string(v.substr(slash + 1))};
  }

  // Opens the copy source and checks its x-amz-copy-source-if-* conditions.
  std::optional<ObjectReader> OpenCopySource(Call& c, const CopySource& src) {
    if (Status st = ValidateObjectKey(c.key); !st.ok()) {
      Error(c, S3ErrorCode::kInvalidArgument, st.message());
      return std::nullopt;
    }
    if (!store_->BucketExists(c.bucket)) {
      Error(c, S3ErrorCode::kNoSuchBucket, "The specified bucket does not exist.");
      return std::nullopt;
    }
    if (!store_->BucketExists(src.bucket)) {
      Error(c, S3ErrorCode::kNoSuchBucket,
            "The specified source bucket \"" + src.bucket + "\" does not exist.");
      return std::nullopt;
    }
    auto reader = store_->GetObject(src.bucket, src.key);
    if (!reader.ok()) {
      StoreError(c, reader.status(), Op::kGet);
      return std::nullopt;
    }
    if (EvaluatePreconditions(c.req.headers, "x-amz-copy-source-", reader->info()) !=
        Precondition::kProceed) {
      Error(c, S3ErrorCode::kPreconditionFailed, kPreconditionMessage);
      return std::nullopt;
    }
    return std::move(*reader);
  }

  static BodySource ReaderSource(ObjectReader& reader) {
    return [&reader](char* buf, size_t n) { return reader.Read(buf, n); };
  }

  void CopyObject(Call& c) {
    auto src = ParseCopySource(c);
    if (!src) return;
    std::string directive(c.req.headers.GetOr("x-amz-metadata-directive", "COPY"));
    if (directive != "COPY" && directive != "REPLACE") {
      return Error(c, S3ErrorCode::kInvalidArgument,
                   "Unknown metadata directive '" + directive + "'; use COPY or REPLACE.");
    }
    if (src->bucket == c.bucket && src->key == c.key && directive != "REPLACE") {
      return Error(c, S3ErrorCode::kInvalidRequest,
                   "This copy request is illegal because it is trying to copy an object to "
                   "itself without changing the object's metadata, storage class, website "
                   "redirect location or encryption attributes.");
    }
    auto reader = OpenCopySource(c, *src);
    if (!reader) return;
    PutOptions opts;
    if (directive == "REPLACE") {
      if (auto f = ObjectOptions(c, &opts)) return Error(c, f->code, f->message);
    } else {
      opts.content_type = reader->info().content_type;
      opts.metadata = reader->info().metadata;
      opts.headers = reader->info().headers;
    }
    // The same bytes: the source's checksums still hold, but for a COMPOSITE one, which
    // described parts the copy does not have: that algorithm is computed over the copy.
    std::unique_ptr<PayloadChecksum> recomputed;
    const ObjectInfo& source = reader->info();
    if (source.checksum_type == UploadChecksum::kComposite && !source.checksums.empty()) {
      if (auto alg = ChecksumFromHeaderName(source.checksums.begin()->first)) {
        recomputed = std::make_unique<PayloadChecksum>(*alg);
      }
    }
    if (recomputed) {
      opts.checksums = [&recomputed]() -> std::map<std::string, std::string> {
        return {{std::string(ChecksumHeaderName(recomputed->algorithm())),
                 recomputed->FinishBase64()}};
      };
    } else {
      opts.checksums = [sums = source.checksums] { return sums; };
    }
    std::string tagging(c.req.headers.GetOr("x-amz-tagging-directive", "COPY"));
    if (tagging == "COPY") {
      opts.tags = reader->info().tags;
    } else if (tagging == "REPLACE") {
      if (directive != "REPLACE") {  // ObjectOptions has not read x-amz-tagging yet
        auto tags = TagsFromQuery(c.req.headers.GetOr("x-amz-tagging", ""));
        if (auto* f = std::get_if<S3Failure>(&tags)) return Error(c, f->code, f->message);
        opts.tags = std::get<TagMap>(std::move(tags));
      }
    } else {
      return Error(c, S3ErrorCode::kInvalidArgument,
                   "Unknown tagging directive '" + tagging + "'; use COPY or REPLACE.");
    }
    if (auto f = WriteConditionsFrom(c, &opts.conditions)) return Error(c, f->code, f->message);
    // Streamed from the source's open file, which a concurrent overwrite does not change.
    BodySource body = ReaderSource(*reader);
    if (recomputed) body = ChecksummedSource(std::move(body), *recomputed);
    auto info = store_->PutObject(c.bucket, c.key, opts, body);
    if (!info.ok()) return StoreError(c, info.status(), Op::kObject);
    Xml(c, 200, CopyResultXml("CopyObjectResult", *info));
  }

  void UploadPartCopy(Call& c) {
    auto number = ParseU64(c.Param("partNumber"));
    if (!number || *number < 1 || *number > static_cast<uint64_t>(kMaxPartNumber)) {
      return Error(c, S3ErrorCode::kInvalidArgument,
                   "Part number must be an integer between 1 and 10000, inclusive.");
    }
    auto src = ParseCopySource(c);
    if (!src) return;
    std::optional<std::pair<uint64_t, uint64_t>> range;
    if (auto r = c.req.headers.Get("x-amz-copy-source-range")) {
      auto parsed = ParseRangeHeader(*r);
      if (!parsed || !parsed->first || !parsed->last) {
        return Error(c, S3ErrorCode::kInvalidArgument,
                     "The x-amz-copy-source-range value must be of the form bytes=first-last "
                     "where first and last are the zero-based offsets of the first and last "
                     "bytes to copy.");
      }
      range = {*parsed->first, *parsed->last};
    }
    auto reader = OpenCopySource(c, *src);
    if (!reader) return;
    if (range) {
      uint64_t size = reader->info().size;
      if (range->second >= size) {
        return Error(
            c, S3ErrorCode::kInvalidArgument,
            "Range specified is not valid for source object of size: " + std::to_string(size));
      }
      reader->Narrow(range->first, range->second - range->first + 1);
    }
    auto upload = store_->MultipartUpload(c.bucket, c.key, c.Param("uploadId"));
    if (!upload.ok()) return StoreError(c, upload.status(), Op::kUpload);
    // The part's checksum in the upload's algorithm, computed over the copied bytes.
    PutOptions opts;
    BodySource body = ReaderSource(*reader);
    std::unique_ptr<PayloadChecksum> sum;
    if (auto alg = UploadChecksum::Of(*upload).algorithm) {
      sum = std::make_unique<PayloadChecksum>(*alg);
      body = ChecksummedSource(std::move(body), *sum);
      opts.checksums = [&sum]() -> std::map<std::string, std::string> {
        return {{std::string(ChecksumHeaderName(sum->algorithm())), sum->FinishBase64()}};
      };
    }
    auto part = store_->UploadPart(c.bucket, c.key, c.Param("uploadId"), static_cast<int>(*number),
                                   opts, body);
    if (!part.ok()) return StoreError(c, part.status(), Op::kUpload);
    ObjectInfo result;
    result.etag = part->etag;
    result.last_modified = part->last_modified;
    result.checksums = part->checksums;
    Xml(c, 200, CopyResultXml("CopyPartResult", result));
  }

  // GetObjectAttributes: HeadObject and the object's parts in one answer, for the attributes
  // named in x-amz-object-attributes (at least one, else 400 InvalidArgument, as S3).
  void GetObjectAttributes(Call& c) {
    ObjectAttributesRequest r;
    const std::string attributes(c.req.headers.GetOr("x-amz-object-attributes", ""));
    std::string_view unknown;
    bool known = ForEachListItem(attributes, [&](std::string_view item) {
      bool* flag = item == "ETag"           ? &r.etag
                   : item == "Checksum"     ? &r.checksum
                   : item == "ObjectParts"  ? &r.object_parts
                   : item == "StorageClass" ? &r.storage_class
                   : item == "ObjectSize"   ? &r.object_size
                                            : nullptr;
      if (flag == nullptr) unknown = item;
      else *flag = true;
      return flag != nullptr;
    });
    if (!known) {
      return Error(c, S3ErrorCode::kInvalidArgument,
                   "Invalid attribute name specified: " + std::string(unknown) +
                       "; use ETag, Checksum, ObjectParts, StorageClass or ObjectSize.");
    }
    if (!r.etag && !r.checksum && !r.object_parts && !r.storage_class && !r.object_size) {
      return Error(c, S3ErrorCode::kInvalidArgument,
                   "x-amz-object-attributes must name at least one of ETag, Checksum, "
                   "ObjectParts, StorageClass, ObjectSize.");
    }
    if (auto h = c.req.headers.Get("x-amz-max-parts")) {
      auto n = ParseU64(*h);
      if (!n) return Error(c, S3ErrorCode::kInvalidArgument, "x-amz-max-parts is not a number.");
      r.max_parts = static_cast<int>(std::min<uint64_t>(*n, 1000));
    }
    if (auto h = c.req.headers.Get("x-amz-part-number-marker")) {
      auto n = ParseU64(*h);
      if (!n || *n > static_cast<uint64_t>(kMaxPartNumber)) {
        return Error(c, S3ErrorCode::kInvalidArgument,
                     "x-amz-part-number-marker must be a part number from 0 to 10000.");
      }
      r.part_number_marker = static_cast<int>(*n);
    }
    auto info = store_->HeadObject(c.bucket, c.key);
    if (!info.ok()) return StoreError(c, info.status(), Op::kGet);
    Headers h;
    h.Add("Last-Modified", FormatHttpDate(info->last_modified));
    Xml(c, 200, ObjectAttributesXml(r, *info), h);
  }

  // --- tagging
  // ------------------------------------------------------------------------------------

  // The Tagging document of a PutObjectTagging or PutBucketTagging, checked against S3's limits
  // (at most `max` tags); nullopt once the refusal has been answered.
  std::optional<TagMap> ReadTagging(Call& c, size_t max) {
    std::optional<S3Failure> failure;
    auto doc = ReadDocument(c, &failure);
    if (!doc.ok()) {
      Error(c, failure->code, failure->message);
      return std::nullopt;
    }
    auto parsed = ParseTagging(*doc);
    if (!parsed.ok()) {
      Error(c,
            parsed.status().code() == Code::kAlreadyExists ? S3ErrorCode::kInvalidTag
                                                           : S3ErrorCode::kMalformedXML,
            parsed.status().message());
      return std::nullopt;
    }
    if (auto f = CheckTags(*parsed, max)) {
      Error(c, f->code, f->message);
      return std::nullopt;
    }
    return std::move(*parsed);
  }

  void ObjectTagging(Call& c) {
    const std::string& m = c.req.method;
    if (m == "GET") {
      auto info = store_->HeadObject(c.bucket, c.key);
      if (!info.ok()) return StoreError(c, info.status(), Op::kGet);
      return Xml(c, 200, TaggingXml(info->tags));
    }
    if (m != "PUT" && m != "DELETE") return NotAllowed(c);
    TagMap tags;
    if (m == "PUT") {
      auto read = ReadTagging(c, kMaxObjectTags);
      if (!read) return;
      tags = std::move(*read);
    }
    auto info = store_->SetObjectTags(c.bucket, c.key, std::move(tags));
    if (!info.ok()) {
      if (info.status().code() == Code::kAborted) {  // replaced meanwhile: tag the new one again
        return Error(c, S3ErrorCode::kInternalError,
                     "The object was replaced while its tags were being set; send the request "
                     "again.");
      }
      return StoreError(c, info.status(), Op::kGet);
    }
    Empty(c, m == "PUT" ? 200 : 204);
  }

  // Get/Put/DeleteBucketTagging. S3 allows up to 50 tags on a bucket; a bucket without tags
  // answers GET with NoSuchTagSet.
  void BucketTagging(Call& c) {
    const std::string& m = c.req.method;
    if (m == "GET") {
      auto tags = store_->BucketTags(c.bucket);
      if (!tags.ok()) return StoreError(c, tags.status(), Op::kBucket);
      if (tags->empty()) return Error(c, S3ErrorCode::kNoSuchTagSet, "The TagSet does not exist.");
      return Xml(c, 200, TaggingXml(*tags));
    }
    if (m != "PUT" && m != "DELETE") return NotAllowed(c);
    TagMap tags;
    if (m == "PUT") {
      auto read = ReadTagging(c, kMaxBucketTags);
      if (!read) return;
      tags = std::move(*read);
    }
    Status st = store_->SetBucketTags(c.bucket, tags);
    if (!st.ok()) return StoreError(c, st, Op::kBucket);
    Empty(c, m == "PUT" ? 200 : 204);
  }

  // --- ACLs and versioning: the one grant and the one state this store has ----------------------

  // A PUT ?acl may only restate the owner's full control: a canned private ACL and no body.
  bool AclPutIsPrivate(Call& c) {
    if (c.req.content_length.value_or(0) > 0 || c.req.chunked) {
      Error(c, S3ErrorCode::kNotImplemented,
            "PutBucketAcl and PutObjectAcl with an access control policy document are not "
            "implemented; this store grants only its owner FULL_CONTROL (x-amz-acl: private).");
      return false;
    }
    return true;
  }

  void BucketAcl(Call& c) {
    if (!store_->BucketExists(c.bucket)) {
      return Error(c, S3ErrorCode::kNoSuchBucket, "The specified bucket does not exist.");
    }
    if (c.req.method == "GET") return Xml(c, 200, OwnerFullControlAclXml(options_.access_key));
    if (c.req.method == "PUT") {
      if (AclPutIsPrivate(c)) Empty(c, 200);
      return;
    }
    NotAllowed(c);
  }

  void ObjectAcl(Call& c) {
    auto info = store_->HeadObject(c.bucket, c.key);
    if (!info.ok()) return StoreError(c, info.status(), Op::kGet);
    if (c.req.method == "GET") return Xml(c, 200, OwnerFullControlAclXml(options_.access_key));
    if (c.req.method == "PUT") {
      if (AclPutIsPrivate(c)) Empty(c, 200);
      return;
    }
    NotAllowed(c);
  }

  void BucketVersioning(Call& c) {
    if (!store_->BucketExists(c.bucket)) {
      return Error(c, S3ErrorCode::kNoSuchBucket, "The specified bucket does not exist.");
    }
    if (c.req.method == "GET") return Xml(c, 200, VersioningConfigurationXml());
    if (c.req.method == "PUT") {
      return Error(c, S3ErrorCode::kNotImplemented,
                   "PutBucketVersioning is not implemented by slipway's object store: buckets "
                   "keep one version of each object; use a full S3 service for versioning.");
    }
    NotAllowed(c);
  }

  // --- multipart --------------------------------------------------------------------------------

  // A non-negative integer query parameter, capped; nullopt (and an error sent) when malformed.
  std::optional<int> IntParam(Call& c, std::string_view name, int fallback, int cap) {
    if (!c.Has(name)) return fallback;
    auto n = ParseU64(c.Param(name));
    if (!n || *n > static_cast<uint64_t>(std::numeric_limits<int>::max())) {
      Error(c, S3ErrorCode::kInvalidArgument,
            "Provided " + std::string(name) + " not an integer or within integer range.");
      return std::nullopt;
    }
    return static_cast<int>(std::min<uint64_t>(*n, static_cast<uint64_t>(cap)));
  }

  void ListParts(Call& c) {
    ListPartsRequest lr;
    lr.bucket = c.bucket;
    lr.key = c.key;
    lr.upload_id = c.Param("uploadId");
    lr.owner = options_.access_key;
    auto max = IntParam(c, "max-parts", 1000, 1000);
    if (!max) return;
    auto marker = IntParam(c, "part-number-marker", 0, kMaxPartNumber);
    if (!marker) return;
    lr.max_parts = *max;
    lr.part_number_marker = *marker;
    auto result = store_->ListParts(c.bucket, c.key, lr.upload_id, *marker, *max);
    if (!result.ok()) return StoreError(c, result.status(), Op::kUpload);
    Xml(c, 200, ListPartsXml(lr, *result));
  }

  void ListMultipartUploads(Call& c) {
    ListUploadsRequest lr;
    lr.bucket = c.bucket;
    lr.owner = options_.access_key;
    lr.encoding_type_url = c.Param("encoding-type") == "url";
    lr.options.prefix = c.Param("prefix");
    lr.options.delimiter = c.Param("delimiter");
    lr.options.key_marker = c.Param("key-marker");
    lr.options.upload_id_marker = c.Param("upload-id-marker");
    auto max = IntParam(c, "max-uploads", 1000, 1000);
    if (!max) return;
    lr.options.max_uploads = *max;
    auto result = store_->ListMultipartUploads(c.bucket, lr.options);
    if (!result.ok()) return StoreError(c, result.status(), Op::kBucket);
    Xml(c, 200, ListMultipartUploadsXml(lr, *result));
  }

  void CreateMultipartUpload(Call& c) {
    if (Status st = ValidateObjectKey(c.key); !st.ok()) {
      return Error(c, S3ErrorCode::kInvalidArgument, st.message());
    }
    PutOptions opts;
    if (auto f = ObjectOptions(c, &opts)) return Error(c, f->code, f->message);
    if (auto f = UploadChecksumFrom(c, &opts)) return Error(c, f->code, f->message);
    auto id = store_->CreateMultipartUpload(c.bucket, c.key, opts);
    if (!id.ok()) return StoreError(c, id.status(), Op::kObject);
    Headers h;
    if (!opts.checksum_algorithm.empty()) {
      h.Add("x-amz-checksum-algorithm", opts.checksum_algorithm);
      h.Add("x-amz-checksum-type", opts.checksum_type);
    }
    Xml(c, 200, InitiateMultipartUploadXml(c.bucket, c.key, *id), h);
  }

  // x-amz-checksum-algorithm and x-amz-checksum-type of CreateMultipartUpload, with S3's rules:
  // the CRCs may be COMPOSITE or FULL_OBJECT (CRC64NVME only FULL_OBJECT, its default; the
  // others default to COMPOSITE), SHA-1 and SHA-256 only COMPOSITE.
  static std::optional<S3Failure> UploadChecksumFrom(const Call& c, PutOptions* opts) {
    auto name = c.req.headers.Get("x-amz-checksum-algorithm");
    auto type = c.req.headers.Get("x-amz-checksum-type");
    if (!name) {
      if (!type) return std::nullopt;
      return S3Failure{S3ErrorCode::kInvalidRequest,
                       "The x-amz-checksum-type header can only be used with the "
                       "x-amz-checksum-algorithm header; send both or neither."};
    }
    auto algorithm = ChecksumFromAlgorithmName(*name);
    if (!algorithm) {
      return S3Failure{S3ErrorCode::kInvalidRequest,
                       "Checksum algorithm provided is unsupported: " + std::string(*name) +
                           "; use one of CRC32, CRC32C, CRC64NVME, SHA1, SHA256."};
    }
    UploadChecksum upload{algorithm, *algorithm == ChecksumAlgorithm::kCrc64Nvme};
    if (type) {
      if (*type != UploadChecksum::kFullObject && *type != UploadChecksum::kComposite) {
        return S3Failure{S3ErrorCode::kInvalidRequest,
                         "Value for x-amz-checksum-type header is invalid: use COMPOSITE or "
                         "FULL_OBJECT."};
      }
      upload.full_object = *type == UploadChecksum::kFullObject;
    }
    bool allowed = upload.full_object ? IsCrcChecksum(*algorithm)
                                      : *algorithm != ChecksumAlgorithm::kCrc64Nvme;
    if (!allowed) {
      return S3Failure{S3ErrorCode::kInvalidRequest,
                       "The " + std::string(upload.type()) +
                           " checksum type cannot be used with the " + upload.LowerName() +
                           " checksum algorithm; FULL_OBJECT takes CRC32, CRC32C or CRC64NVME, "
                           "COMPOSITE takes CRC32, CRC32C, SHA1 or SHA256."};
    }
    opts->checksum_algorithm = std::string(ChecksumAlgorithmName(*algorithm));
    opts->checksum_type = std::string(upload.type());
    return std::nullopt;
  }

  void UploadPart(Call& c) {
    auto number = ParseU64(c.Param("partNumber"));
    if (!number || *number < 1 || *number > static_cast<uint64_t>(kMaxPartNumber)) {
      return Error(c, S3ErrorCode::kInvalidArgument,
                   "Part number must be an integer between 1 and 10000, inclusive.");
    }
    PutOptions opts;
    std::optional<S3Failure> refused = CheckDeclaredLength(c);
    if (!refused) refused = ContentMd5(c, &opts);
    if (refused) return Error(c, refused->code, refused->message);
    auto upload = store_->MultipartUpload(c.bucket, c.key, c.Param("uploadId"));
    if (!upload.ok()) return StoreError(c, upload.status(), Op::kUpload);
    Payload payload(c.req, c.body, c.auth);
    if (auto f = payload.Open()) return Error(c, f->code, f->message);
    // In an upload with a checksum algorithm every part carries that checksum, as S3 requires:
    // a part of a FULL_OBJECT upload sent without one has it computed; any other difference is
    // refused before the body. An upload without one takes parts with any checksum (current
    // SDKs send CRC32 by default), verified and answered, as S3 does.
    UploadChecksum expected = UploadChecksum::Of(*upload);
    std::optional<ChecksumAlgorithm> sent = payload.DeclaredChecksum();
    if (!sent && expected.algorithm && expected.full_object) {
      payload.ComputeChecksum(*expected.algorithm);
    } else if (expected.algorithm && sent != expected.algorithm) {
      return Error(c, S3ErrorCode::kInvalidRequest,
                   "Checksum Type mismatch occurred, expected checksum Type: " +
                       expected.LowerName() + ", actual checksum Type: " +
                       UploadChecksum{sent}.LowerName() +
                       "; send every part with the checksum algorithm the upload was created "
                       "with (x-amz-checksum-algorithm).");
    }
    opts.checksums = [&payload] {
      std::map<std::string, std::string> sums;
      for (const auto& [name, value] : payload.VerifiedChecksums()) sums[name] = value;
      return sums;
    };
    auto part = store_->UploadPart(c.bucket, c.key, c.Param("uploadId"), static_cast<int>(*number),
                                   opts, payload.Source());
    if (!part.ok()) {
      if (payload.failure()) return Error(c, payload.failure()->code, payload.failure()->message);
      return StoreError(c, part.status(), Op::kUpload);
    }
    Headers h = payload.VerifiedChecksums();
    h.Add("ETag", part->etag);
    Empty(c, 200, h);
  }

  void CompleteMultipartUpload(Call& c) {
    std::optional<S3Failure> failure;
    // Here x-amz-checksum-* headers carry the assembled object's checksum, not the document's.
    auto doc = ReadDocument(c, &failure, /*checksum_headers=*/false);
    if (!doc.ok()) return Error(c, failure->code, failure->message);
    auto parts = ParseCompleteMultipartUpload(*doc);
    if (!parts.ok()) return Error(c, S3ErrorCode::kMalformedXML, parts.status().message());
    WriteConditions cond;
    if (auto f = WriteConditionsFrom(c, &cond)) return Error(c, f->code, f->message);
    // A completion sent again for a completed upload finds no upload in progress: the store
    // answers what the first completion made, checking nothing again.
    UploadChecksum expected;
    if (auto upload = store_->MultipartUpload(c.bucket, c.key, c.Param("uploadId")); upload.ok()) {
      expected = UploadChecksum::Of(*upload);
      if (auto type = c.req.headers.Get("x-amz-checksum-type");
          type && (!expected.algorithm || *type != expected.type())) {
        return Error(c, S3ErrorCode::kInvalidRequest,
                     "The upload was created using the " +
                         std::string(expected.algorithm ? expected.type() : "null") +
                         " checksum mode, and the complete request names " + std::string(*type) +
                         "; send the checksum type the upload was created with, or none.");
      }
    }
    PartsChecksum checksum = [&](const std::vector<CompletedPart>& listed,
                                 const std::vector<PartInfo>& stored) {
      return AssembleChecksum(c, expected, listed, stored, &failure);
    };
    auto info = store_->CompleteMultipartUpload(c.bucket, c.key, c.Param("uploadId"), *parts, cond,
                                                checksum);
    if (!info.ok()) {
      if (failure) return Error(c, failure->code, failure->message);
      return StoreError(c, info.status(), Op::kComplete);
    }
    std::string location = endpoint() + "/" + c.bucket + "/" + net::UriEncode(c.key, false);
    Xml(c, 200, CompleteMultipartUploadXml(location, c.bucket, c.key, *info));
  }

  // The assembled object's checksum from its parts' (S3's rules): with a COMPOSITE upload the
  // client lists every part's checksum, with a FULL_OBJECT one it may; each listed one must be
  // the stored one (else InvalidPart). A whole-object checksum sent as a header must match.
  static Result<AssembledChecksum> AssembleChecksum(const Call& c, const UploadChecksum& upload,
                                                    const std::vector<CompletedPart>& listed,
                                                    const std::vector<PartInfo>& stored,
                                                    std::optional<S3Failure>* failure) {
    AssembledChecksum out;
    if (!upload.algorithm) return out;
    auto fail = [failure](S3ErrorCode code, std::string message) {
      *failure = S3Failure{code, message};
      return Status::InvalidArgument(std::move(message));
    };
    const std::string header(ChecksumHeaderName(*upload.algorithm));
    std::vector<std::string> sums;
    std::vector<uint64_t> sizes;
    for (size_t i = 0; i < listed.size(); ++i) {
      int number = listed[i].part_number;
      auto theirs = listed[i].checksums.find(header);
      auto mine = stored[i].checksums.find(header);
      if (theirs == listed[i].checksums.end() && !upload.full_object) {
        return fail(S3ErrorCode::kInvalidRequest,
                    "The upload was created using a " + upload.LowerName() +
                        " checksum. The complete request must include the checksum for each "
                        "part. It was missing for part " +
                        std::to_string(number) + " in the request.");
      }
      if (mine == stored[i].checksums.end() ||
          (theirs != listed[i].checksums.end() && theirs->second != mine->second)) {
        return fail(S3ErrorCode::kInvalidPart,
                    "One or more of the specified parts could not be found: part " +
                        std::to_string(number) + " was stored with another " +
                        upload.LowerName() +
                        " checksum than the one listed; list the checksum UploadPart returned.");
      }
      sums.push_back(mine->second);
      sizes.push_back(stored[i].size);
    }
    auto value = upload.full_object ? FullObjectCrc(*upload.algorithm, sums, sizes)
                                    : CompositeChecksum(*upload.algorithm, sums);
    if (!value) {
      return fail(S3ErrorCode::kInternalError,
                  "A stored part checksum is damaged; upload the parts again.");
    }
    if (auto sent = c.req.headers.Get(header)) {
      std::string_view without_count = std::string_view(*value).substr(0, value->find('-'));
      if (*sent != *value && *sent != without_count) {
        return fail(S3ErrorCode::kBadDigest,
                    "The " + upload.LowerName() +
                        " you specified did not match the calculated checksum of the assembled "
                        "object; check the parts and send the object's checksum again.");
      }
    }
    out.checksums[header] = *value;
    out.checksum_type = std::string(upload.type());
    if (!upload.full_object) out.part_checksums = std::move(sums);
    return out;
  }

  void AbortMultipartUpload(Call& c) {
    Status st = store_->AbortMultipartUpload(c.bucket, c.key, c.Param("uploadId"));
    if (!st.ok()) return StoreError(c, st, Op::kUpload);
    Empty(c, 204);
  }

  S3ServerOptions options_;
  metrics::Registry registry_;
  S3Metrics metrics_{registry_};
  OpsEndpoints ops_;
  std::unique_ptr<ObjectStore> store_;
  std::unique_ptr<net::HttpServer> http_;
};

}  // namespace

Result<std::unique_ptr<S3Server>> S3Server::Start(const S3ServerOptions& options) {
  auto server = std::make_unique<S3ServerImpl>(options);
  SLIPWAY_RETURN_IF_ERROR(server->Init());
  return std::unique_ptr<S3Server>(std::move(server));
}

}  // namespace slipway::storage
