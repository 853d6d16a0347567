// Operations served (path-style only: http://host:port/<bucket>/<key>):
//   GET /                                  ListBuckets
//   PUT /b, HEAD /b, DELETE /b             CreateBucket, HeadBucket, DeleteBucket
//   GET /b?list-type=2                     ListObjectsV2 (EncodingType=url supported)
//   GET /b                                 ListObjects (v1)
//   GET /b?location                        GetBucketLocation
//   POST /b?delete                         DeleteObjects
//   PUT /b/k, GET /b/k (Range), HEAD /b/k, DELETE /b/k
//   POST /b/k?uploads, PUT /b/k?partNumber=N&uploadId=U, POST /b/k?uploadId=U,
//   DELETE /b/k?uploadId=U                 multipart uploads
// Anything else S3 has (ACLs, tagging, versioning, CopyObject, ...) answers NotImplemented.
//
// Order of work for every request: authenticate (SigV4, before a byte of the body is read),
// route, refuse what can be refused from the headers alone (size, length), then stream the
// body through its decoder and checks into the store, which commits nothing unless every check
// passed.
#include "storage/s3_server.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <map>
#include <set>

#include "base/clock.h"
#include "base/crypto.h"
#include "net/http_server.h"
#include "storage/aws_chunked.h"
#include "storage/object_store.h"
#include "storage/s3_xml.h"
#include "storage/sigv4.h"

namespace slipway::storage {
namespace {

using net::BodyReader;
using net::Headers;
using net::HttpRequest;
using net::ResponseWriter;

constexpr size_t kSmallBodyLimit = 4 << 20;  // request XML documents
constexpr size_t kResponseChunk = 256 << 10;

// An S3 error on its way to the client.
struct S3Failure {
  S3ErrorCode code;
  std::string message;
};

// Subresources of S3 that this store does not implement; a request naming one must not be
// mistaken for the plain object or bucket operation.
const std::set<std::string, std::less<>>& UnsupportedSubresources() {
  static const std::set<std::string, std::less<>> kSet = {"accelerate",
                                                          "acl",
                                                          "analytics",
                                                          "attributes",
                                                          "cors",
                                                          "encryption",
                                                          "intelligent-tiering",
                                                          "inventory",
                                                          "legal-hold",
                                                          "lifecycle",
                                                          "logging",
                                                          "metrics",
                                                          "notification",
                                                          "object-lock",
                                                          "ownershipControls",
                                                          "policy",
                                                          "policyStatus",
                                                          "publicAccessBlock",
                                                          "replication",
                                                          "requestPayment",
                                                          "restore",
                                                          "retention",
                                                          "select",
                                                          "tagging",
                                                          "torrent",
                                                          "versioning",
                                                          "versions",
                                                          "website"};
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

// SigV2 (Authorization: AWS <key>:<sig>, or ?AWSAccessKeyId=..&Signature=..), which older
// clients such as the AWS CLI v1's presign still produce.
bool IsSignatureV2(const HttpRequest& req) {
  if (auto a = req.headers.Get("Authorization"); a && a->starts_with("AWS ")) return true;
  bool key = false, sig = false;
  for (const auto& [name, value] : net::ParseQuery(req.query)) {
    key = key || name == "AWSAccessKeyId";
    sig = sig || name == "Signature";
  }
  return key && sig;
}

// The request body as the store should see it: aws-chunked framing removed, and checked
// against every digest the request declared (x-amz-content-sha256, x-amz-checksum-*). The first
// failure is kept with its S3 error code; the store then commits nothing.
class Payload {
 public:
  Payload(const HttpRequest& req, BodyReader& body, const VerifiedRequest& auth)
      : req_(req), raw_(body), auth_(auth) {}

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
      if (alg && !decoder_) {
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
    if (checksum_ && checksum_->FinishBase64() != expected_checksum_) {
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
  std::optional<S3Failure> failure_;
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
    net::HttpServer::Options ho;
    ho.listen = options_.listen;
    SLIPWAY_ASSIGN_OR_RETURN(
        http_,
        net::HttpServer::Start(ho, [this](const HttpRequest& req, BodyReader& body,
                                          ResponseWriter& resp) { Handle(req, body, resp); }));
    return Status::Ok();
  }

  uint16_t port() const override { return http_->port(); }
  std::string endpoint() const override { return "http://" + http_->address(); }
  void Shutdown() override {
    if (http_) http_->Shutdown();
  }

 private:
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

    if (IsSignatureV2(c.req)) {
      return Error(c, S3ErrorCode::kAccessDenied,
                   "Signature Version 2 is not supported; sign with Signature Version 4 (for "
                   "the AWS CLI v1: aws configure set default.s3.signature_version s3v4).");
    }
    auto verified = VerifyRequest(
        c.req,
        [this](std::string_view key) -> std::optional<std::string> {
          if (key == options_.access_key) return options_.secret_key;
          return std::nullopt;
        },
        options_.region, SystemClock().Now());
    if (auto* f = std::get_if<AuthFailure>(&verified)) {
      return Error(c, AuthErrorCode(f->error), f->message);
    }
    c.auth = std::get<VerifiedRequest>(std::move(verified));

    for (const auto& [name, value] : c.query) {
      if (UnsupportedSubresources().count(name) > 0) {
        return Error(c, S3ErrorCode::kNotImplemented,
                     "The ?" + name +
                         " subresource is not implemented by slipway's object "
                         "store; use a full S3 service for it.");
      }
    }
    const std::string& m = c.req.method;
    if (c.bucket.empty()) {
      if (m == "GET") return ListBuckets(c);
      return NotAllowed(c);
    }
    if (!c.has_key) {
      if (m == "PUT") return CreateBucket(c);
      if (m == "HEAD") return HeadBucket(c);
      if (m == "DELETE") return DeleteBucket(c);
      if (m == "POST" && c.Has("delete")) return DeleteObjects(c);
      if (m == "GET" && c.Has("location")) return GetBucketLocation(c);
      if (m == "GET" && c.Has("uploads")) {
        return Error(c, S3ErrorCode::kNotImplemented,
                     "ListMultipartUploads is not implemented by slipway's object store.");
      }
      if (m == "GET") return ListObjects(c);
      return NotAllowed(c);
    }
    if (m == "PUT" && c.req.headers.Has("x-amz-copy-source")) {
      return Error(c, S3ErrorCode::kNotImplemented,
                   "CopyObject is not implemented by slipway's object store; download and "
                   "upload the object instead.");
    }
    if (m == "PUT" && c.Has("uploadId")) return UploadPart(c);
    if (m == "PUT") return PutObject(c);
    if (m == "POST" && c.Has("uploads")) return CreateMultipartUpload(c);
    if (m == "POST" && c.Has("uploadId")) return CompleteMultipartUpload(c);
    if (m == "DELETE" && c.Has("uploadId")) return AbortMultipartUpload(c);
    if (m == "GET" && c.Has("uploadId")) {
      return Error(c, S3ErrorCode::kNotImplemented,
                   "ListParts is not implemented by slipway's object store.");
    }
    if (m == "GET" || m == "HEAD") return GetObject(c);
    if (m == "DELETE") return DeleteObject(c);
    return NotAllowed(c);
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
      return S3Failure{S3ErrorCode::kInvalidArgument,
                       "The Content-MD5 you specified is not the base64 of a 16-byte MD5 "
                       "digest; send a valid one or none."};
    }
    opts->expected_md5 = raw;
    return std::nullopt;
  }

  PutOptions ObjectOptions(const Call& c) {
    PutOptions opts;
    opts.content_type = c.req.headers.GetOr("Content-Type", "");
    for (const auto& [name, value] : c.req.headers) {
      std::string lower = net::ToLower(name);
      if (lower.starts_with("x-amz-meta-")) opts.metadata[lower.substr(11)] = value;
    }
    return opts;
  }

  // A small verified request body (an XML document), read whole.
  Result<std::string> ReadDocument(Call& c, std::optional<S3Failure>* failure) {
    Payload payload(c.req, c.body, c.auth);
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

  void ListBuckets(Call& c) {
    Xml(c, 200, ListBucketsXml(store_->ListBuckets(), options_.access_key));
  }

  void CreateBucket(Call& c) {
    if (!CheckBucketName(c)) return;
    // The optional CreateBucketConfiguration names a region; the store has only one.
    Status st = store_->CreateBucket(c.bucket);
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
    if (c.Has("max-keys")) {
      auto mk = ParseU64(c.Param("max-keys"));
      if (!mk) {
        return Error(c, S3ErrorCode::kInvalidArgument,
                     "max-keys must be a non-negative integer; send a number from 0 to 1000.");
      }
      lr.options.max_keys = static_cast<int>(std::min<uint64_t>(*mk, 1000));
    }
    bool v2 = c.Param("list-type") == "2";
    if (v2) {
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
    std::vector<std::string> deleted;
    std::vector<DeleteObjectsFailure> failed;
    for (const auto& key : req->keys) {
      Status st = store_->DeleteObject(c.bucket, key);
      if (st.ok()) {
        if (!req->quiet) deleted.push_back(key);
      } else if (st.code() == Code::kNotFound) {
        return Error(c, S3ErrorCode::kNoSuchBucket, st.message());
      } else {
        failed.push_back({key,
                          st.code() == Code::kInvalidArgument ? S3ErrorCode::kInvalidArgument
                                                              : S3ErrorCode::kInternalError,
                          st.message()});
      }
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
    for (const auto& [k, v] : info.metadata) h.Add("x-amz-meta-" + k, v);
  }

  void PutObject(Call& c) {
    if (!CheckBucketName(c)) return;
    PutOptions opts = ObjectOptions(c);
    std::optional<S3Failure> refused = CheckDeclaredLength(c);
    if (!refused) refused = ContentMd5(c, &opts);
    if (refused) return Error(c, refused->code, refused->message);
    if (!store_->BucketExists(c.bucket)) {
      return Error(c, S3ErrorCode::kNoSuchBucket, "The specified bucket does not exist.");
    }
    if (Status st = ValidateObjectKey(c.key); !st.ok()) {
      return Error(c, S3ErrorCode::kInvalidArgument, st.message());
    }
    Payload payload(c.req, c.body, c.auth);
    if (auto f = payload.Open()) return Error(c, f->code, f->message);
    auto info = store_->PutObject(c.bucket, c.key, opts, payload.Source());
    if (!info.ok()) {
      if (payload.failure()) return Error(c, payload.failure()->code, payload.failure()->message);
      return StoreError(c, info.status(), Op::kObject);
    }
    Headers h = payload.VerifiedChecksums();
    h.Add("ETag", info->etag);
    Empty(c, 200, h);
  }

  void GetObject(Call& c) {
    std::optional<ByteRange> range;
    if (auto r = c.req.headers.Get("Range")) range = ParseRangeHeader(*r);
    auto reader = store_->GetObject(c.bucket, c.key, range);
    if (!reader.ok()) return StoreError(c, reader.status(), Op::kGet);
    const ObjectInfo& info = reader->info();

    if (auto inm = c.req.headers.Get("If-None-Match"); inm && *inm == info.etag) {
      Headers h = BaseHeaders(c);
      h.Add("ETag", info.etag);
      c.status = 304;
      (void)c.resp.WriteHead(304, h, std::nullopt);
      (void)c.resp.Finish();
      return;
    }
    Headers h = BaseHeaders(c);
    ObjectHeaders(info, h);
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
    std::vector<char> buf(kResponseChunk);
    for (;;) {
      auto n = reader->Read(buf.data(), buf.size());
      if (!n.ok()) {
        spdlog::warn("s3 GET {}: {}; the response is cut short", c.req.target,
                     n.status().ToString());
        return;  // the server closes a connection whose body is shorter than announced
      }
      if (*n == 0) break;
      if (!c.resp.Write(std::string_view(buf.data(), *n)).ok()) return;  // client gone
    }
    (void)c.resp.Finish();
  }

  void DeleteObject(Call& c) {
    Status st = store_->DeleteObject(c.bucket, c.key);
    if (!st.ok()) return StoreError(c, st, Op::kObject);
    Empty(c, 204);
  }

  // --- multipart --------------------------------------------------------------------------------

  void CreateMultipartUpload(Call& c) {
    if (Status st = ValidateObjectKey(c.key); !st.ok()) {
      return Error(c, S3ErrorCode::kInvalidArgument, st.message());
    }
    auto id = store_->CreateMultipartUpload(c.bucket, c.key, ObjectOptions(c));
    if (!id.ok()) return StoreError(c, id.status(), Op::kObject);
    Xml(c, 200, InitiateMultipartUploadXml(c.bucket, c.key, *id));
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
    Payload payload(c.req, c.body, c.auth);
    if (auto f = payload.Open()) return Error(c, f->code, f->message);
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
    auto doc = ReadDocument(c, &failure);
    if (!doc.ok()) return Error(c, failure->code, failure->message);
    auto parts = ParseCompleteMultipartUpload(*doc);
    if (!parts.ok()) return Error(c, S3ErrorCode::kMalformedXML, parts.status().message());
    auto info = store_->CompleteMultipartUpload(c.bucket, c.key, c.Param("uploadId"), *parts);
    if (!info.ok()) return StoreError(c, info.status(), Op::kComplete);
    std::string location = endpoint() + "/" + c.bucket + "/" + net::UriEncode(c.key, false);
    Xml(c, 200, CompleteMultipartUploadXml(location, c.bucket, c.key, info->etag));
  }

  void AbortMultipartUpload(Call& c) {
    Status st = store_->AbortMultipartUpload(c.bucket, c.key, c.Param("uploadId"));
    if (!st.ok()) return StoreError(c, st, Op::kUpload);
    Empty(c, 204);
  }

  S3ServerOptions options_;
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
