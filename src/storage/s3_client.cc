#include "storage/s3_client.h"

#include <algorithm>
#include <charconv>
#include <ctime>
#include <filesystem>
#include <fstream>

#include "net/http_client.h"
#include "storage/s3_xml.h"

namespace slipway::storage {
namespace {

using std::chrono::system_clock;

std::string ObjectPath(std::string_view bucket, std::string_view key) {
  std::string path = "/" + net::UriEncode(bucket);
  if (!key.empty()) path += "/" + net::UriEncode(key, /*encode_slash=*/false);
  return path;
}

std::string Describe(std::string_view method, std::string_view bucket, std::string_view key) {
  std::string out(method);
  out += " s3://";
  out += bucket;
  if (!key.empty()) out.append("/").append(key);
  return out;
}

// The text of the first <tag>...</tag> in xml, unescaped; nullopt when absent. S3's documents
// are flat enough (no attributes on these elements, no CDATA) for this to be exact.
std::optional<std::string> ElementText(std::string_view xml, std::string_view tag) {
  std::string open = "<" + std::string(tag) + ">";
  std::string close = "</" + std::string(tag) + ">";
  size_t start = xml.find(open);
  if (start == std::string_view::npos) {
    if (xml.find("<" + std::string(tag) + "/>") != std::string_view::npos) return std::string();
    return std::nullopt;
  }
  start += open.size();
  size_t end = xml.find(close, start);
  if (end == std::string_view::npos) return std::nullopt;
  std::string out;
  if (!XmlUnescape(xml.substr(start, end - start), &out)) return std::nullopt;
  return out;
}

// Every <tag>...</tag> block in xml (not nested in one another), contents only.
std::vector<std::string_view> ElementBlocks(std::string_view xml, std::string_view tag) {
  std::string open = "<" + std::string(tag) + ">";
  std::string close = "</" + std::string(tag) + ">";
  std::vector<std::string_view> out;
  size_t pos = 0;
  while ((pos = xml.find(open, pos)) != std::string_view::npos) {
    size_t start = pos + open.size();
    size_t end = xml.find(close, start);
    if (end == std::string_view::npos) break;
    out.push_back(xml.substr(start, end - start));
    pos = end + close.size();
  }
  return out;
}

uint64_t ParseSize(std::string_view s) {
  uint64_t n = 0;
  std::from_chars(s.data(), s.data() + s.size(), n);
  return n;
}

// "2013-05-24T00:00:00.000Z" (XML) or "Fri, 24 May 2013 00:00:00 GMT" (Last-Modified).
system_clock::time_point ParseTimestamp(std::string_view s) {
  std::tm tm{};
  std::string str(s);
  if (strptime(str.c_str(), "%Y-%m-%dT%H:%M:%S", &tm) == nullptr &&
      strptime(str.c_str(), "%a, %d %b %Y %H:%M:%S", &tm) == nullptr) {
    return {};
  }
  system_clock::time_point t{};
  (void)TimePointFromTimeT(timegm(&tm), &t);  // a year no time point holds stays the epoch
  return t;
}

// The request headers a PutOptions asks for (signed along with the rest). Content-MD5 only
// where the body is the whole object.
net::Headers PutHeaders(const PutOptions& put, bool whole_object = true) {
  net::Headers headers;
  if (!put.content_type.empty()) headers.Add("Content-Type", put.content_type);
  for (const auto& [name, value] : put.metadata) headers.Add("x-amz-meta-" + name, value);
  if (put.expected_md5 && whole_object) {
    headers.Add("Content-MD5", Base64Encode(*put.expected_md5));
  }
  return headers;
}

// Streams the file once to learn its SHA-256 (the signed payload hash).
Result<std::string> FileSha256Hex(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Status::NotFound("cannot open \"" + path + "\" to upload it; check that it exists.");
  }
  Sha256Stream hash;
  std::string buf(1 << 20, '\0');
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    hash.Update(std::string_view(buf.data(), static_cast<size_t>(in.gcount())));
  }
  if (in.bad()) return Status::Internal("reading \"" + path + "\" failed; check the disk.");
  return hash.FinishHex();
}

std::string NextStep(Code code) {
  switch (code) {
    case Code::kNotFound:
      return "check the bucket and key names";
    case Code::kPermissionDenied:
      return "check the S3 access key, secret key and region";
    case Code::kResourceExhausted:
      return "upload a smaller object or raise the store's limit";
    case Code::kAlreadyExists:
      return "use the existing bucket";
    case Code::kDataLoss:
      return "the bytes were damaged in transit; upload again";
    case Code::kUnavailable:
      return "the store is failing or overloaded; retry later";
    case Code::kFailedPrecondition:
      return "fix the precondition and retry";
    default:
      return "check the request";
  }
}

}  // namespace

Status StatusFromS3Error(int http_status, std::string_view body, std::string_view operation) {
  std::string s3_code = ElementText(body, "Code").value_or("");
  std::string s3_message = ElementText(body, "Message").value_or("");
  Code code;
  if (s3_code == "NoSuchKey" || s3_code == "NoSuchBucket" || s3_code == "NoSuchUpload") {
    code = Code::kNotFound;
  } else if (s3_code == "AccessDenied" || s3_code == "SignatureDoesNotMatch" ||
             s3_code == "InvalidAccessKeyId" || s3_code == "AuthorizationHeaderMalformed" ||
             s3_code == "AuthorizationQueryParametersError") {
    code = Code::kPermissionDenied;
  } else if (s3_code == "EntityTooLarge") {
    code = Code::kResourceExhausted;
  } else if (s3_code == "BucketAlreadyOwnedByYou" || s3_code == "BucketAlreadyExists") {
    code = Code::kAlreadyExists;
  } else if (s3_code == "BucketNotEmpty" || s3_code == "RequestTimeTooSkewed") {
    code = Code::kFailedPrecondition;
  } else if (s3_code == "BadDigest" || s3_code == "XAmzContentSHA256Mismatch") {
    code = Code::kDataLoss;
  } else if (s3_code == "InvalidRange") {
    code = Code::kOutOfRange;
  } else if (s3_code == "NotImplemented") {
    code = Code::kUnimplemented;
  } else if (http_status >= 500) {
    code = Code::kUnavailable;
  } else if (http_status == 404) {
    code = Code::kNotFound;
  } else if (http_status == 401 || http_status == 403) {
    code = Code::kPermissionDenied;
  } else if (http_status == 409 || http_status == 412) {
    code = Code::kFailedPrecondition;
  } else {
    code = Code::kInvalidArgument;
  }
  std::string message =
      std::string(operation) + " failed: the store answered HTTP " + std::to_string(http_status);
  if (!s3_code.empty()) message += " " + s3_code;
  if (!s3_message.empty()) message += " (" + s3_message + ")";
  message += "; " + NextStep(code) + ".";
  return Status(code, std::move(message));
}

S3Client::S3Client(S3ClientOptions options)
    : options_(std::move(options)), http_(std::make_unique<net::HttpClient>()) {
  while (!options_.endpoint.empty() && options_.endpoint.back() == '/')
    options_.endpoint.pop_back();
  if (options_.public_endpoint.empty()) options_.public_endpoint = options_.endpoint;
  while (options_.public_endpoint.back() == '/') options_.public_endpoint.pop_back();
  if (options_.part_size == 0) options_.part_size = 16ull * 1024 * 1024;
}

S3Client::~S3Client() = default;

system_clock::time_point S3Client::Now() const {
  return options_.clock ? options_.clock->Now() : SystemClock().Now();
}

namespace {

Result<net::ClientResponse> Send(net::HttpClient& http, const S3ClientOptions& o,
                                 system_clock::time_point now, const std::string& method,
                                 std::string_view bucket, std::string_view key,
                                 const std::string& query, net::Headers headers,
                                 const std::string& body, const std::string& body_file,
                                 std::string payload_hash, const std::string& response_file) {
  net::ClientRequest req;
  req.method = method;
  req.url = o.endpoint + ObjectPath(bucket, key);
  if (!query.empty()) req.url += "?" + query;
  if (payload_hash.empty()) payload_hash = Sha256Hex(body);
  SignRequest(method, req.url, headers, payload_hash, o.credentials, o.region, now);
  req.headers = std::move(headers);
  req.body = body;
  req.body_file = body_file;
  req.response_file = response_file;
  req.timeout = o.request_timeout;
  return http.Do(req);
}

}  // namespace

Status S3Client::CreateBucket(std::string_view bucket) {
  std::string body;
  // Outside us-east-1, S3 wants the region restated in the body.
  if (options_.region != "us-east-1") {
    body = "<CreateBucketConfiguration><LocationConstraint>" + XmlEscape(options_.region) +
           "</LocationConstraint></CreateBucketConfiguration>";
  }
  SLIPWAY_ASSIGN_OR_RETURN(
      auto resp, Send(*http_, options_, Now(), "PUT", bucket, "", "", {}, body, "", "", ""));
  if (resp.status / 100 != 2) {
    return StatusFromS3Error(resp.status, resp.body, Describe("CreateBucket", bucket, ""));
  }
  return Status::Ok();
}

Result<std::string> S3Client::PutObject(std::string_view bucket, std::string_view key,
                                        const std::string& file_path, const PutOptions& put) {
  std::error_code ec;
  uint64_t size = std::filesystem::file_size(file_path, ec);
  if (ec) {
    return Status::NotFound("cannot upload \"" + file_path + "\": " + ec.message() +
                            "; check the path.");
  }
  if (size > options_.multipart_threshold) return PutMultipart(bucket, key, file_path, size, put);

  SLIPWAY_ASSIGN_OR_RETURN(std::string hash, FileSha256Hex(file_path));
  net::Headers headers = PutHeaders(put);
  SLIPWAY_ASSIGN_OR_RETURN(auto resp, Send(*http_, options_, Now(), "PUT", bucket, key, "",
                                           std::move(headers), "", file_path, hash, ""));
  if (resp.status / 100 != 2) {
    return StatusFromS3Error(resp.status, resp.body, Describe("PUT", bucket, key));
  }
  return resp.headers.GetOr("ETag", "");
}

Result<std::string> S3Client::PutObjectData(std::string_view bucket, std::string_view key,
                                            std::string_view data, const PutOptions& put) {
  net::Headers headers = PutHeaders(put);
  SLIPWAY_ASSIGN_OR_RETURN(auto resp, Send(*http_, options_, Now(), "PUT", bucket, key, "",
                                           std::move(headers), std::string(data), "", "", ""));
  if (resp.status / 100 != 2) {
    return StatusFromS3Error(resp.status, resp.body, Describe("PUT", bucket, key));
  }
  return resp.headers.GetOr("ETag", "");
}

namespace {

ObjectInfo InfoFromHeaders(std::string_view key, const net::Headers& h) {
  ObjectInfo info;
  info.key = std::string(key);
  info.size = ParseSize(h.GetOr("Content-Length", "0"));
  info.etag = h.GetOr("ETag", "");
  info.content_type = h.GetOr("Content-Type", "");
  if (auto lm = h.Get("Last-Modified")) info.last_modified = ParseTimestamp(*lm);
  constexpr std::string_view kMeta = "x-amz-meta-";
  for (const auto& [name, value] : h) {
    std::string lower = net::ToLower(name);
    if (lower.compare(0, kMeta.size(), kMeta) == 0)
      info.metadata[lower.substr(kMeta.size())] = value;
  }
  return info;
}

}  // namespace

Result<ObjectInfo> S3Client::GetObject(std::string_view bucket, std::string_view key,
                                       const std::string& file_path) {
  SLIPWAY_ASSIGN_OR_RETURN(auto resp, Send(*http_, options_, Now(), "GET", bucket, key, "", {}, "",
                                           "", std::string(kEmptySha256), file_path));
  if (resp.status / 100 != 2) {
    return StatusFromS3Error(resp.status, resp.body, Describe("GET", bucket, key));
  }
  return InfoFromHeaders(key, resp.headers);
}

Result<ObjectInfo> S3Client::HeadObject(std::string_view bucket, std::string_view key) {
  SLIPWAY_ASSIGN_OR_RETURN(auto resp, Send(*http_, options_, Now(), "HEAD", bucket, key, "", {}, "",
                                           "", std::string(kEmptySha256), ""));
  if (resp.status / 100 != 2) {
    return StatusFromS3Error(resp.status, resp.body, Describe("HEAD", bucket, key));
  }
  return InfoFromHeaders(key, resp.headers);
}

Status S3Client::DeleteObject(std::string_view bucket, std::string_view key) {
  SLIPWAY_ASSIGN_OR_RETURN(auto resp, Send(*http_, options_, Now(), "DELETE", bucket, key, "", {},
                                           "", "", std::string(kEmptySha256), ""));
  if (resp.status / 100 != 2) {
    return StatusFromS3Error(resp.status, resp.body, Describe("DELETE", bucket, key));
  }
  return Status::Ok();
}

Result<ListResult> S3Client::ListObjectsV2(std::string_view bucket, const ListOptions& list) {
  std::string query = "list-type=2";
  auto add = [&](std::string_view name, std::string_view value) {
    if (value.empty()) return;
    query += "&" + std::string(name) + "=" + net::UriEncode(value);
  };
  add("continuation-token", list.continuation_token);
  add("delimiter", list.delimiter);
  add("max-keys", std::to_string(list.max_keys));
  add("prefix", list.prefix);
  add("start-after", list.start_after);
  SLIPWAY_ASSIGN_OR_RETURN(auto resp, Send(*http_, options_, Now(), "GET", bucket, "", query, {},
                                           "", "", std::string(kEmptySha256), ""));
  if (resp.status / 100 != 2) {
    return StatusFromS3Error(resp.status, resp.body,
                             Describe("ListObjectsV2", bucket, list.prefix));
  }
  ListResult page;
  for (std::string_view block : ElementBlocks(resp.body, "Contents")) {
    ObjectInfo obj;
    obj.key = ElementText(block, "Key").value_or("");
    obj.size = ParseSize(ElementText(block, "Size").value_or("0"));
    obj.etag = ElementText(block, "ETag").value_or("");
    obj.last_modified = ParseTimestamp(ElementText(block, "LastModified").value_or(""));
    page.objects.push_back(std::move(obj));
  }
  for (std::string_view block : ElementBlocks(resp.body, "CommonPrefixes")) {
    page.common_prefixes.push_back(ElementText(block, "Prefix").value_or(""));
  }
  page.is_truncated = ElementText(resp.body, "IsTruncated").value_or("") == "true";
  page.next_continuation_token = ElementText(resp.body, "NextContinuationToken").value_or("");
  if (page.is_truncated && page.next_continuation_token.empty()) {
    return Status::Internal("ListObjectsV2 on s3://" + std::string(bucket) +
                            " is truncated but has no NextContinuationToken; the store does not "
                            "speak ListObjectsV2 correctly.");
  }
  return page;
}

Result<std::string> S3Client::CreateMultipartUpload(std::string_view bucket, std::string_view key,
                                                    const PutOptions& put) {
  net::Headers headers = PutHeaders(put, /*whole_object=*/false);
  SLIPWAY_ASSIGN_OR_RETURN(auto resp, Send(*http_, options_, Now(), "POST", bucket, key,
                                           "uploads=", std::move(headers), "", "", "", ""));
  if (resp.status / 100 != 2) {
    return StatusFromS3Error(resp.status, resp.body,
                             Describe("CreateMultipartUpload", bucket, key));
  }
  auto id = ElementText(resp.body, "UploadId");
  if (!id || id->empty()) {
    return Status::Internal(
        "CreateMultipartUpload for s3://" + std::string(bucket) + "/" + std::string(key) +
        " returned no UploadId; the store's answer was: " + resp.body.substr(0, 200));
  }
  return *id;
}

Result<std::string> S3Client::UploadPart(std::string_view bucket, std::string_view key,
                                         std::string_view upload_id, int part_number,
                                         std::string_view data) {
  std::string query =
      "partNumber=" + std::to_string(part_number) + "&uploadId=" + net::UriEncode(upload_id);
  SLIPWAY_ASSIGN_OR_RETURN(auto resp, Send(*http_, options_, Now(), "PUT", bucket, key, query, {},
                                           std::string(data), "", "", ""));
  if (resp.status / 100 != 2) {
    return StatusFromS3Error(resp.status, resp.body,
                             Describe("UploadPart " + std::to_string(part_number), bucket, key));
  }
  std::string etag = resp.headers.GetOr("ETag", "");
  if (etag.empty()) {
    return Status::Internal("UploadPart " + std::to_string(part_number) + " for s3://" +
                            std::string(bucket) + "/" + std::string(key) +
                            " returned no ETag; the upload cannot be completed.");
  }
  return etag;
}

Result<std::string> S3Client::CompleteMultipartUpload(
    std::string_view bucket, std::string_view key, std::string_view upload_id,
    const std::vector<CompletedUploadPart>& parts) {
  std::string body = "<CompleteMultipartUpload>";
  for (const auto& p : parts) {
    body += "<Part><PartNumber>" + std::to_string(p.part_number) + "</PartNumber><ETag>" +
            XmlEscape(p.etag) + "</ETag></Part>";
  }
  body += "</CompleteMultipartUpload>";
  SLIPWAY_ASSIGN_OR_RETURN(
      auto resp,
      Send(*http_, options_, Now(), "POST", bucket, key, "uploadId=" + net::UriEncode(upload_id),
           {{"Content-Type", "application/xml"}}, body, "", "", ""));
  // S3 may answer 200 and still report an error in the body (it starts answering before it
  // has assembled the object).
  if (resp.status / 100 != 2 || resp.body.find("<Error>") != std::string::npos) {
    return StatusFromS3Error(resp.status / 100 == 2 ? 500 : resp.status, resp.body,
                             Describe("CompleteMultipartUpload", bucket, key));
  }
  return ElementText(resp.body, "ETag").value_or("");
}

Status S3Client::AbortMultipartUpload(std::string_view bucket, std::string_view key,
                                      std::string_view upload_id) {
  SLIPWAY_ASSIGN_OR_RETURN(auto resp, Send(*http_, options_, Now(), "DELETE", bucket, key,
                                           "uploadId=" + net::UriEncode(upload_id), {}, "", "",
                                           std::string(kEmptySha256), ""));
  if (resp.status / 100 != 2) {
    return StatusFromS3Error(resp.status, resp.body, Describe("AbortMultipartUpload", bucket, key));
  }
  return Status::Ok();
}

Result<std::string> S3Client::PutMultipart(std::string_view bucket, std::string_view key,
                                           const std::string& file_path, uint64_t size,
                                           const PutOptions& put) {
  std::ifstream in(file_path, std::ios::binary);
  if (!in) {
    return Status::NotFound("cannot open \"" + file_path +
                            "\" to upload it; check that it exists.");
  }
  SLIPWAY_ASSIGN_OR_RETURN(std::string upload_id, CreateMultipartUpload(bucket, key, put));

  auto upload_all = [&]() -> Result<std::string> {
    std::vector<CompletedUploadPart> parts;
    std::string buf;
    uint64_t offset = 0;
    for (int number = 1; offset < size; ++number) {
      uint64_t n = std::min(options_.part_size, size - offset);
      buf.resize(n);
      in.read(buf.data(), static_cast<std::streamsize>(n));
      if (static_cast<uint64_t>(in.gcount()) != n) {
        return Status::Aborted("\"" + file_path +
                               "\" shrank while it was being uploaded; upload it "
                               "again once nothing writes to it.");
      }
      SLIPWAY_ASSIGN_OR_RETURN(std::string etag, UploadPart(bucket, key, upload_id, number, buf));
      parts.push_back({number, std::move(etag)});
      offset += n;
    }
    return CompleteMultipartUpload(bucket, key, upload_id, parts);
  };

  auto result = upload_all();
  if (!result.ok()) {
    // Leaves no orphaned parts behind; the original error is the one worth reporting.
    (void)AbortMultipartUpload(bucket, key, upload_id);
  }
  return result;
}

std::string S3Client::PresignPut(std::string_view bucket, std::string_view key,
                                 std::chrono::seconds expires, std::string_view content_type,
                                 std::optional<uint64_t> content_length) const {
  net::Headers extra;
  if (!content_type.empty()) extra.Add("Content-Type", std::string(content_type));
  if (content_length) extra.Add("Content-Length", std::to_string(*content_length));
  return Presign("PUT", options_.public_endpoint + ObjectPath(bucket, key), options_.credentials,
                 options_.region, Now(), expires, extra);
}

// Why x-amz-checksum-sha256 and not x-amz-content-sha256: for a presigned URL, SigV4's canonical
// request always carries UNSIGNED-PAYLOAD as the payload hash (AWS: "Authenticating Requests:
// Using Query Parameters"), and what S3 does with an x-amz-content-sha256 hash on a presigned
// request is not documented. PutObject's x-amz-checksum-sha256 is: S3 computes the SHA-256 of
// the body it receives and answers 400 BadDigest, storing nothing, when it differs; and a
// header named in X-Amz-SignedHeaders must be sent with the signed value or the request fails
// with SignatureDoesNotMatch (it cannot be dropped or changed by the uploader).
S3Client::ContentBoundPut S3Client::PresignContentPut(std::string_view bucket,
                                                      std::string_view key,
                                                      std::chrono::seconds expires,
                                                      std::string_view sha256_hex,
                                                      uint64_t content_length) const {
  std::string raw;
  for (size_t i = 0; i + 1 < sha256_hex.size(); i += 2) {
    raw += static_cast<char>(std::stoi(std::string(sha256_hex.substr(i, 2)), nullptr, 16));
  }
  ContentBoundPut out;
  out.headers.Add("x-amz-checksum-sha256", Base64Encode(raw));
  net::Headers signed_headers = out.headers;
  signed_headers.Add("Content-Length", std::to_string(content_length));
  out.url = Presign("PUT", options_.public_endpoint + ObjectPath(bucket, key),
                    options_.credentials, options_.region, Now(), expires, signed_headers);
  return out;
}

std::string S3Client::PresignGet(std::string_view bucket, std::string_view key,
                                 std::chrono::seconds expires,
                                 std::string_view response_content_type) const {
  std::string url = options_.public_endpoint + ObjectPath(bucket, key);
  if (!response_content_type.empty()) {
    url += "?response-content-type=" + net::UriEncode(response_content_type);
  }
  return Presign("GET", url, options_.credentials, options_.region, Now(), expires);
}

}  // namespace slipway::storage
