#include "storage/s3_xml.h"

#include <fmt/format.h>

#include <cctype>

#include "base/clock.h"
#include "net/http.h"
#include "storage/aws_chunked.h"

namespace slipway::storage {
namespace {

constexpr std::string_view kXmlDecl = R"(<?xml version="1.0" encoding="UTF-8"?>)";
constexpr std::string_view kS3Namespace = "http://s3.amazonaws.com/doc/2006-03-01/";

struct ErrorEntry {
  std::string_view name;
  int status;
};

ErrorEntry Entry(S3ErrorCode code) {
  switch (code) {
    case S3ErrorCode::kAccessDenied:
      return {"AccessDenied", 403};
    case S3ErrorCode::kAuthorizationHeaderMalformed:
      return {"AuthorizationHeaderMalformed", 400};
    case S3ErrorCode::kAuthorizationQueryParametersError:
      return {"AuthorizationQueryParametersError", 400};
    case S3ErrorCode::kBadDigest:
      return {"BadDigest", 400};
    case S3ErrorCode::kBucketAlreadyOwnedByYou:
      return {"BucketAlreadyOwnedByYou", 409};
    case S3ErrorCode::kBucketNotEmpty:
      return {"BucketNotEmpty", 409};
    case S3ErrorCode::kEntityTooLarge:
      return {"EntityTooLarge", 400};
    case S3ErrorCode::kEntityTooSmall:
      return {"EntityTooSmall", 400};
    case S3ErrorCode::kIncompleteBody:
      return {"IncompleteBody", 400};
    case S3ErrorCode::kInternalError:
      return {"InternalError", 500};
    case S3ErrorCode::kInvalidAccessKeyId:
      return {"InvalidAccessKeyId", 403};
    case S3ErrorCode::kInvalidArgument:
      return {"InvalidArgument", 400};
    case S3ErrorCode::kInvalidBucketName:
      return {"InvalidBucketName", 400};
    case S3ErrorCode::kInvalidPart:
      return {"InvalidPart", 400};
    case S3ErrorCode::kInvalidPartOrder:
      return {"InvalidPartOrder", 400};
    case S3ErrorCode::kInvalidRange:
      return {"InvalidRange", 416};
    case S3ErrorCode::kInvalidRequest:
      return {"InvalidRequest", 400};
    case S3ErrorCode::kMalformedXML:
      return {"MalformedXML", 400};
    case S3ErrorCode::kMethodNotAllowed:
      return {"MethodNotAllowed", 405};
    case S3ErrorCode::kMissingContentLength:
      return {"MissingContentLength", 411};
    case S3ErrorCode::kNoSuchBucket:
      return {"NoSuchBucket", 404};
    case S3ErrorCode::kNoSuchKey:
      return {"NoSuchKey", 404};
    case S3ErrorCode::kNoSuchUpload:
      return {"NoSuchUpload", 404};
    case S3ErrorCode::kNoSuchVersion:
      return {"NoSuchVersion", 404};
    case S3ErrorCode::kNotImplemented:
      return {"NotImplemented", 501};
    case S3ErrorCode::kInvalidDigest:
      return {"InvalidDigest", 400};
    case S3ErrorCode::kInvalidPartNumber:
      return {"InvalidPartNumber", 416};
    case S3ErrorCode::kMetadataTooLarge:
      return {"MetadataTooLarge", 400};
    case S3ErrorCode::kPreconditionFailed:
      return {"PreconditionFailed", 412};
    case S3ErrorCode::kInvalidBucketState:
      return {"InvalidBucketState", 409};
    case S3ErrorCode::kInvalidTag:
      return {"InvalidTag", 400};
    case S3ErrorCode::kNoSuchTagSet:
      return {"NoSuchTagSet", 404};
    case S3ErrorCode::kRequestTimeTooSkewed:
      return {"RequestTimeTooSkewed", 403};
    case S3ErrorCode::kSignatureDoesNotMatch:
      return {"SignatureDoesNotMatch", 403};
    case S3ErrorCode::kXAmzContentSHA256Mismatch:
      return {"XAmzContentSHA256Mismatch", 400};
  }
  return {"InternalError", 500};
}

// <name>escaped text</name>
void Element(std::string& out, std::string_view name, std::string_view text) {
  fmt::format_to(std::back_inserter(out), "<{}>{}</{}>", name, XmlEscape(text), name);
}

// The inner text of each element `name` in xml, in order. Elements are matched by name with or
// without attributes; nesting of the same name is not supported (S3's documents have none).
std::vector<std::string_view> Elements(std::string_view xml, std::string_view name) {
  std::vector<std::string_view> out;
  std::string open = "<" + std::string(name);
  std::string close = "</" + std::string(name) + ">";
  size_t pos = 0;
  for (;;) {
    size_t start = xml.find(open, pos);
    if (start == std::string_view::npos) break;
    size_t after = start + open.size();
    if (after >= xml.size()) break;
    char c = xml[after];
    if (c != '>' && c != ' ' && c != '\t' && c != '\n' && c != '\r' && c != '/') {
      pos = after;  // a longer name that starts the same ("<PartNumber" for "<Part")
      continue;
    }
    size_t gt = xml.find('>', after);
    if (gt == std::string_view::npos) break;
    if (xml[gt - 1] == '/') {  // <Name/>: empty
      out.emplace_back();
      pos = gt + 1;
      continue;
    }
    size_t end = xml.find(close, gt + 1);
    if (end == std::string_view::npos) break;
    out.push_back(xml.substr(gt + 1, end - gt - 1));
    pos = end + close.size();
  }
  return out;
}

Status MalformedXml(std::string_view what) {
  return Status::InvalidArgument(fmt::format(
      "the XML you provided was not well-formed or did not validate against S3's schema ({}); "
      "send the document S3 documents for this request",
      what));
}

std::string Trim(std::string_view s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return "";
  size_t e = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(b, e - b + 1));
}

}  // namespace

std::string_view S3ErrorName(S3ErrorCode code) { return Entry(code).name; }
int S3ErrorStatus(S3ErrorCode code) { return Entry(code).status; }

std::string XmlEscape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      case '\r':
        out += "&#13;";
        break;  // would be normalised away by a parser otherwise
      default:
        out += c;
    }
  }
  return out;
}

bool XmlUnescape(std::string_view text, std::string* out) {
  out->clear();
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '&') {
      *out += text[i];
      continue;
    }
    size_t semi = text.find(';', i);
    if (semi == std::string_view::npos) return false;
    std::string_view ent = text.substr(i + 1, semi - i - 1);
    if (ent == "amp")
      *out += '&';
    else if (ent == "lt")
      *out += '<';
    else if (ent == "gt")
      *out += '>';
    else if (ent == "quot")
      *out += '"';
    else if (ent == "apos")
      *out += '\'';
    else if (ent.size() > 1 && ent[0] == '#') {
      uint32_t cp = 0;
      bool hex = ent[1] == 'x' || ent[1] == 'X';
      std::string_view digits = ent.substr(hex ? 2 : 1);
      if (digits.empty() || digits.size() > 8) return false;
      for (char c : digits) {
        int v;
        if (c >= '0' && c <= '9')
          v = c - '0';
        else if (hex && c >= 'a' && c <= 'f')
          v = c - 'a' + 10;
        else if (hex && c >= 'A' && c <= 'F')
          v = c - 'A' + 10;
        else
          return false;
        cp = cp * (hex ? 16 : 10) + static_cast<uint32_t>(v);
      }
      if (cp > 0x10FFFF) return false;
      // UTF-8 encode the code point.
      if (cp < 0x80) {
        *out += static_cast<char>(cp);
      } else if (cp < 0x800) {
        *out += static_cast<char>(0xC0 | (cp >> 6));
        *out += static_cast<char>(0x80 | (cp & 0x3F));
      } else if (cp < 0x10000) {
        *out += static_cast<char>(0xE0 | (cp >> 12));
        *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        *out += static_cast<char>(0x80 | (cp & 0x3F));
      } else {
        *out += static_cast<char>(0xF0 | (cp >> 18));
        *out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        *out += static_cast<char>(0x80 | (cp & 0x3F));
      }
    } else {
      return false;
    }
    i = semi;
  }
  return true;
}

std::string ErrorXml(S3ErrorCode code, std::string_view message, std::string_view resource,
                     std::string_view request_id) {
  std::string out(kXmlDecl);
  out += "\n<Error>";
  Element(out, "Code", S3ErrorName(code));
  Element(out, "Message", message);
  Element(out, "Resource", resource);
  Element(out, "RequestId", request_id);
  out += "</Error>";
  return out;
}

std::string ListBucketsXml(const std::vector<BucketInfo>& buckets, std::string_view owner_id,
                           std::string_view next_token, std::optional<std::string> prefix) {
  std::string out(kXmlDecl);
  fmt::format_to(std::back_inserter(out), "\n<ListAllMyBucketsResult xmlns=\"{}\"><Owner>",
                 kS3Namespace);
  Element(out, "ID", owner_id);
  Element(out, "DisplayName", owner_id);
  out += "</Owner><Buckets>";
  for (const auto& b : buckets) {
    out += "<Bucket>";
    Element(out, "Name", b.name);
    Element(out, "CreationDate", FormatIso8601(b.created));
    out += "</Bucket>";
  }
  out += "</Buckets>";
  if (!next_token.empty()) Element(out, "ContinuationToken", next_token);
  if (prefix) Element(out, "Prefix", *prefix);
  out += "</ListAllMyBucketsResult>";
  return out;
}

std::string ListObjectsV2Xml(const ListObjectsV2Request& request, const ListResult& result) {
  // With EncodingType=url, every key-like value is percent-encoded (S3 keeps '/' readable).
  auto enc = [&](std::string_view s) {
    return request.encoding_type_url ? net::UriEncode(s, /*encode_slash=*/false) : std::string(s);
  };
  const ListOptions& o = request.options;
  std::string out(kXmlDecl);
  fmt::format_to(std::back_inserter(out), "\n<ListBucketResult xmlns=\"{}\">", kS3Namespace);
  Element(out, "Name", request.bucket);
  Element(out, "Prefix", enc(o.prefix));
  if (!o.delimiter.empty()) Element(out, "Delimiter", enc(o.delimiter));
  Element(out, "MaxKeys", std::to_string(o.max_keys));
  if (request.encoding_type_url) Element(out, "EncodingType", "url");
  Element(out, "KeyCount", std::to_string(result.objects.size() + result.common_prefixes.size()));
  Element(out, "IsTruncated", result.is_truncated ? "true" : "false");
  if (request.continuation_token_sent || !o.continuation_token.empty()) {
    Element(out, "ContinuationToken", o.continuation_token);
  }
  if (result.is_truncated) Element(out, "NextContinuationToken", result.next_continuation_token);
  if (!o.start_after.empty()) Element(out, "StartAfter", enc(o.start_after));
  for (const auto& obj : result.objects) {
    out += "<Contents>";
    Element(out, "Key", enc(obj.key));
    Element(out, "LastModified", FormatIso8601(obj.last_modified));
    Element(out, "ETag", obj.etag);
    Element(out, "Size", std::to_string(obj.size));
    Element(out, "StorageClass", "STANDARD");
    if (!request.owner.empty()) {
      out += "<Owner>";
      Element(out, "ID", request.owner);
      Element(out, "DisplayName", request.owner);
      out += "</Owner>";
    }
    out += "</Contents>";
  }
  for (const auto& p : result.common_prefixes) {
    out += "<CommonPrefixes>";
    Element(out, "Prefix", enc(p));
    out += "</CommonPrefixes>";
  }
  out += "</ListBucketResult>";
  return out;
}

std::string InitiateMultipartUploadXml(std::string_view bucket, std::string_view key,
                                       std::string_view upload_id) {
  std::string out(kXmlDecl);
  fmt::format_to(std::back_inserter(out), "\n<InitiateMultipartUploadResult xmlns=\"{}\">",
                 kS3Namespace);
  Element(out, "Bucket", bucket);
  Element(out, "Key", key);
  Element(out, "UploadId", upload_id);
  out += "</InitiateMultipartUploadResult>";
  return out;
}

namespace {

constexpr ChecksumAlgorithm kChecksumAlgorithms[] = {
    ChecksumAlgorithm::kCrc32, ChecksumAlgorithm::kCrc32c, ChecksumAlgorithm::kCrc64Nvme,
    ChecksumAlgorithm::kSha1, ChecksumAlgorithm::kSha256};

// Stored checksums ("x-amz-checksum-crc32" -> base64) as S3's elements (<ChecksumCRC32>).
// GetObjectAttributes sends a composite checksum without its "-<parts>" suffix.
void ChecksumElements(std::string& out, const std::map<std::string, std::string>& checksums,
                      bool without_part_count = false) {
  for (const auto& [header, value] : checksums) {
    auto algorithm = ChecksumFromHeaderName(header);
    if (!algorithm) continue;
    std::string_view v = value;
    if (without_part_count) v = v.substr(0, v.find('-'));
    Element(out, ChecksumElementName(*algorithm), v);
  }
}

// ChecksumType of an object with a checksum: FULL_OBJECT unless it was assembled as COMPOSITE.
void ChecksumTypeElement(std::string& out, const ObjectInfo& info) {
  if (info.checksums.empty()) return;
  Element(out, "ChecksumType", info.checksum_type.empty() ? "FULL_OBJECT" : info.checksum_type);
}

// An upload's <ChecksumAlgorithm> and <ChecksumType> (ListParts, ListMultipartUploads).
void UploadChecksumElements(std::string& out, std::string_view algorithm, std::string_view type) {
  if (algorithm.empty()) return;
  Element(out, "ChecksumAlgorithm", algorithm);
  Element(out, "ChecksumType", type);
}

}  // namespace

std::string CompleteMultipartUploadXml(std::string_view location, std::string_view bucket,
                                       std::string_view key, const ObjectInfo& object) {
  std::string out(kXmlDecl);
  fmt::format_to(std::back_inserter(out), "\n<CompleteMultipartUploadResult xmlns=\"{}\">",
                 kS3Namespace);
  Element(out, "Location", location);
  Element(out, "Bucket", bucket);
  Element(out, "Key", key);
  Element(out, "ETag", object.etag);
  ChecksumElements(out, object.checksums);
  ChecksumTypeElement(out, object);
  out += "</CompleteMultipartUploadResult>";
  return out;
}

std::string LocationConstraintXml(std::string_view region) {
  std::string out(kXmlDecl);
  // us-east-1 is reported as an empty constraint, as S3 does.
  fmt::format_to(std::back_inserter(out),
                 "\n<LocationConstraint xmlns=\"{}\">{}</LocationConstraint>", kS3Namespace,
                 region == "us-east-1" ? "" : XmlEscape(region));
  return out;
}

Result<std::vector<CompletedPart>> ParseCompleteMultipartUpload(std::string_view xml) {
  auto roots = Elements(xml, "CompleteMultipartUpload");
  if (roots.size() != 1) return MalformedXml("no CompleteMultipartUpload element");
  std::vector<CompletedPart> parts;
  for (std::string_view part : Elements(roots[0], "Part")) {
    auto numbers = Elements(part, "PartNumber");
    auto etags = Elements(part, "ETag");
    if (numbers.size() != 1 || etags.size() != 1) {
      return MalformedXml("a Part without exactly one PartNumber and one ETag");
    }
    std::string number = Trim(numbers[0]);
    if (number.empty() || number.size() > 5 ||
        number.find_first_not_of("0123456789") != std::string::npos) {
      return MalformedXml("a PartNumber that is not a number");
    }
    CompletedPart p;
    p.part_number = std::stoi(number);
    if (!XmlUnescape(Trim(etags[0]), &p.etag)) return MalformedXml("an ETag with a bad entity");
    for (ChecksumAlgorithm algorithm : kChecksumAlgorithms) {
      auto sums = Elements(part, ChecksumElementName(algorithm));
      if (sums.size() > 1) return MalformedXml("a Part with a checksum listed twice");
      if (sums.size() == 1) p.checksums[std::string(ChecksumHeaderName(algorithm))] = Trim(sums[0]);
    }
    parts.push_back(std::move(p));
  }
  if (parts.empty()) return MalformedXml("no Part elements");
  return parts;
}

Result<DeleteObjectsRequest> ParseDeleteObjects(std::string_view xml) {
  auto roots = Elements(xml, "Delete");
  if (roots.size() != 1) return MalformedXml("no Delete element");
  DeleteObjectsRequest req;
  auto quiet = Elements(roots[0], "Quiet");
  req.quiet = !quiet.empty() && Trim(quiet[0]) == "true";
  for (std::string_view obj : Elements(roots[0], "Object")) {
    auto keys = Elements(obj, "Key");
    if (keys.size() != 1) return MalformedXml("an Object without exactly one Key");
    std::string key;
    if (!XmlUnescape(keys[0], &key)) return MalformedXml("a Key with a bad entity");
    req.keys.push_back(std::move(key));
    DeleteConditions cond;
    if (auto etags = Elements(obj, "ETag"); !etags.empty()) {
      std::string etag;
      if (!XmlUnescape(Trim(etags[0]), &etag)) return MalformedXml("an ETag with a bad entity");
      cond.if_match = etag;
    }
    if (auto times = Elements(obj, "LastModifiedTime"); !times.empty()) {
      std::chrono::system_clock::time_point t;
      if (!ParseIso8601(Trim(times[0]), &t))
        return MalformedXml("a LastModifiedTime that is not a date");
      cond.last_modified = t;
    }
    if (auto sizes = Elements(obj, "Size"); !sizes.empty()) {
      std::string n = Trim(sizes[0]);
      if (n.empty() || n.size() > 19 || n.find_first_not_of("0123456789") != std::string::npos) {
        return MalformedXml("a Size that is not a number");
      }
      cond.size = std::stoull(n);
    }
    req.conditions.push_back(cond);
  }
  if (req.keys.empty() || req.keys.size() > 1000) {
    return MalformedXml("a Delete must name 1 to 1000 objects");
  }
  return req;
}

bool ParseIso8601(std::string_view s, std::chrono::system_clock::time_point* out) {
  // YYYY-MM-DDTHH:MM:SS[.fff]Z
  if (s.size() < 20 || s.back() != 'Z' || s[4] != '-' || s[7] != '-' || s[10] != 'T' ||
      s[13] != ':' || s[16] != ':') {
    return false;
  }
  auto num = [&](size_t at, size_t len, int* v) {
    *v = 0;
    for (size_t i = at; i < at + len; ++i) {
      if (s[i] < '0' || s[i] > '9') return false;
      *v = *v * 10 + (s[i] - '0');
    }
    return true;
  };
  int y, mo, d, h, mi, sec, ms = 0;
  if (!num(0, 4, &y) || !num(5, 2, &mo) || !num(8, 2, &d) || !num(11, 2, &h) || !num(14, 2, &mi) ||
      !num(17, 2, &sec)) {
    return false;
  }
  if (s.size() > 20) {
    if (s[19] != '.' || s.size() < 22) return false;
    std::string_view frac = s.substr(20, s.size() - 21);
    for (size_t i = 0; i < 3; ++i) {
      char c = i < frac.size() ? frac[i] : '0';
      if (c < '0' || c > '9') return false;
      ms = ms * 10 + (c - '0');
    }
  }
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) return false;
  using namespace std::chrono;
  auto days = sys_days(year{y} / month{static_cast<unsigned>(mo)} / day{static_cast<unsigned>(d)});
  *out = system_clock::time_point(days) + hours(h) + minutes(mi) + seconds(sec) + milliseconds(ms);
  return true;
}

std::string TaggingXml(const std::map<std::string, std::string>& tags) {
  std::string out(kXmlDecl);
  fmt::format_to(std::back_inserter(out), "\n<Tagging xmlns=\"{}\"><TagSet>", kS3Namespace);
  for (const auto& [k, v] : tags) {
    out += "<Tag>";
    Element(out, "Key", k);
    Element(out, "Value", v);
    out += "</Tag>";
  }
  out += "</TagSet></Tagging>";
  return out;
}

std::string ObjectAttributesXml(const ObjectAttributesRequest& r, const ObjectInfo& info) {
  std::string out(kXmlDecl);
  fmt::format_to(std::back_inserter(out), "\n<GetObjectAttributesResponse xmlns=\"{}\">",
                 kS3Namespace);
  if (r.etag) {  // without the quotes HEAD and GET put around it, as S3 answers here
    std::string_view etag = info.etag;
    if (etag.size() >= 2 && etag.front() == '"') etag = etag.substr(1, etag.size() - 2);
    Element(out, "ETag", etag);
  }
  if (r.checksum && !info.checksums.empty()) {
    out += "<Checksum>";
    ChecksumElements(out, info.checksums, /*without_part_count=*/true);
    ChecksumTypeElement(out, info);
    out += "</Checksum>";
  }
  if (r.object_parts && !info.part_sizes.empty()) {
    int total = static_cast<int>(info.part_sizes.size());
    out += "<ObjectParts>";
    Element(out, "PartsCount", std::to_string(total));  // botocore: TotalPartsCount
    Element(out, "PartNumberMarker", std::to_string(r.part_number_marker));
    int last = r.part_number_marker;
    for (int n = r.part_number_marker + 1; n <= total && n - r.part_number_marker <= r.max_parts;
         ++n) {
      last = n;
    }
    Element(out, "NextPartNumberMarker", std::to_string(last));
    Element(out, "MaxParts", std::to_string(r.max_parts));
    Element(out, "IsTruncated", last < total ? "true" : "false");
    for (int n = r.part_number_marker + 1; n <= last; ++n) {
      out += "<Part>";
      Element(out, "PartNumber", std::to_string(n));
      Element(out, "Size", std::to_string(info.part_sizes[n - 1]));
      // A COMPOSITE object's parts carry their checksums, as ListParts showed them.
      if (static_cast<size_t>(n) <= info.part_checksums.size()) {
        auto algorithm = info.checksums.empty()
                             ? std::nullopt
                             : ChecksumFromHeaderName(info.checksums.begin()->first);
        if (algorithm) {
          Element(out, ChecksumElementName(*algorithm), info.part_checksums[n - 1]);
        }
      }
      out += "</Part>";
    }
    out += "</ObjectParts>";
  }
  if (r.storage_class) Element(out, "StorageClass", "STANDARD");
  if (r.object_size) Element(out, "ObjectSize", std::to_string(info.size));
  out += "</GetObjectAttributesResponse>";
  return out;
}

Result<std::map<std::string, std::string>> ParseTagging(std::string_view xml) {
  auto roots = Elements(xml, "Tagging");
  if (roots.size() != 1) return MalformedXml("no Tagging element");
  auto sets = Elements(roots[0], "TagSet");
  if (sets.size() != 1) return MalformedXml("no TagSet element");
  std::map<std::string, std::string> tags;
  for (std::string_view tag : Elements(sets[0], "Tag")) {
    auto keys = Elements(tag, "Key");
    auto values = Elements(tag, "Value");
    if (keys.size() != 1 || values.size() != 1) {
      return MalformedXml("a Tag without exactly one Key and one Value");
    }
    std::string k, v;
    if (!XmlUnescape(keys[0], &k) || !XmlUnescape(values[0], &v)) {
      return MalformedXml("a Tag with a bad entity");
    }
    if (!tags.emplace(k, v).second) {
      return Status::AlreadyExists("Cannot provide multiple Tags with the same key: " + k);
    }
  }
  return tags;
}

std::string CopyResultXml(std::string_view root, const ObjectInfo& info) {
  std::string out(kXmlDecl);
  fmt::format_to(std::back_inserter(out), "\n<{} xmlns=\"{}\">", root, kS3Namespace);
  Element(out, "LastModified", FormatIso8601(info.last_modified));
  Element(out, "ETag", info.etag);
  ChecksumElements(out, info.checksums);
  fmt::format_to(std::back_inserter(out), "</{}>", root);
  return out;
}

namespace {
void Owner(std::string& out, std::string_view tag, std::string_view owner) {
  fmt::format_to(std::back_inserter(out), "<{}>", tag);
  Element(out, "ID", owner);
  Element(out, "DisplayName", owner);
  fmt::format_to(std::back_inserter(out), "</{}>", tag);
}
}  // namespace

std::string ListPartsXml(const ListPartsRequest& request, const ListPartsResult& result) {
  std::string out(kXmlDecl);
  fmt::format_to(std::back_inserter(out), "\n<ListPartsResult xmlns=\"{}\">", kS3Namespace);
  Element(out, "Bucket", request.bucket);
  Element(out, "Key", request.key);
  Element(out, "UploadId", request.upload_id);
  Owner(out, "Initiator", request.owner);
  Owner(out, "Owner", request.owner);
  Element(out, "StorageClass", "STANDARD");
  Element(out, "PartNumberMarker", std::to_string(request.part_number_marker));
  Element(out, "NextPartNumberMarker", std::to_string(result.next_part_number_marker));
  Element(out, "MaxParts", std::to_string(request.max_parts));
  Element(out, "IsTruncated", result.is_truncated ? "true" : "false");
  for (const auto& p : result.parts) {
    out += "<Part>";
    Element(out, "PartNumber", std::to_string(p.part_number));
    Element(out, "LastModified", FormatIso8601(p.last_modified));
    Element(out, "ETag", p.etag);
    Element(out, "Size", std::to_string(p.size));
    ChecksumElements(out, p.checksums);
    out += "</Part>";
  }
  UploadChecksumElements(out, result.checksum_algorithm, result.checksum_type);
  out += "</ListPartsResult>";
  return out;
}

std::string ListMultipartUploadsXml(const ListUploadsRequest& request,
                                    const ListUploadsResult& result) {
  auto enc = [&](std::string_view s) {
    return request.encoding_type_url ? net::UriEncode(s, /*encode_slash=*/false) : std::string(s);
  };
  const ListUploadsOptions& o = request.options;
  std::string out(kXmlDecl);
  fmt::format_to(std::back_inserter(out), "\n<ListMultipartUploadsResult xmlns=\"{}\">",
                 kS3Namespace);
  Element(out, "Bucket", request.bucket);
  Element(out, "KeyMarker", enc(o.key_marker));
  Element(out, "UploadIdMarker", o.upload_id_marker);
  Element(out, "NextKeyMarker", enc(result.next_key_marker));
  Element(out, "NextUploadIdMarker", result.next_upload_id_marker);
  Element(out, "Prefix", enc(o.prefix));
  if (!o.delimiter.empty()) Element(out, "Delimiter", enc(o.delimiter));
  Element(out, "MaxUploads", std::to_string(o.max_uploads));
  if (request.encoding_type_url) Element(out, "EncodingType", "url");
  Element(out, "IsTruncated", result.is_truncated ? "true" : "false");
  for (const auto& u : result.uploads) {
    out += "<Upload>";
    Element(out, "Key", enc(u.key));
    Element(out, "UploadId", u.upload_id);
    Owner(out, "Initiator", request.owner);
    Owner(out, "Owner", request.owner);
    Element(out, "StorageClass", "STANDARD");
    Element(out, "Initiated", FormatIso8601(u.initiated));
    UploadChecksumElements(out, u.checksum_algorithm, u.checksum_type);
    out += "</Upload>";
  }
  for (const auto& p : result.common_prefixes) {
    out += "<CommonPrefixes>";
    Element(out, "Prefix", enc(p));
    out += "</CommonPrefixes>";
  }
  out += "</ListMultipartUploadsResult>";
  return out;
}

std::string ListVersionsXml(const ListObjectsV2Request& request, const ListResult& result,
                            std::string_view key_marker, std::string_view owner) {
  auto enc = [&](std::string_view s) {
    return request.encoding_type_url ? net::UriEncode(s, /*encode_slash=*/false) : std::string(s);
  };
  const ListOptions& o = request.options;
  std::string out(kXmlDecl);
  fmt::format_to(std::back_inserter(out), "\n<ListVersionsResult xmlns=\"{}\">", kS3Namespace);
  Element(out, "Name", request.bucket);
  Element(out, "Prefix", enc(o.prefix));
  Element(out, "KeyMarker", enc(key_marker));
  Element(out, "VersionIdMarker", "");
  if (result.is_truncated) {
    std::string last = result.objects.empty() ? "" : result.objects.back().key;
    if (!result.common_prefixes.empty() && result.common_prefixes.back() > last) {
      last = result.common_prefixes.back();
    }
    Element(out, "NextKeyMarker", enc(last));
    Element(out, "NextVersionIdMarker", "null");
  }
  if (!o.delimiter.empty()) Element(out, "Delimiter", enc(o.delimiter));
  Element(out, "MaxKeys", std::to_string(o.max_keys));
  if (request.encoding_type_url) Element(out, "EncodingType", "url");
  Element(out, "IsTruncated", result.is_truncated ? "true" : "false");
  for (const auto& obj : result.objects) {
    out += "<Version>";
    Element(out, "Key", enc(obj.key));
    Element(out, "VersionId", "null");
    Element(out, "IsLatest", "true");
    Element(out, "LastModified", FormatIso8601(obj.last_modified));
    Element(out, "ETag", obj.etag);
    Element(out, "Size", std::to_string(obj.size));
    Element(out, "StorageClass", "STANDARD");
    Owner(out, "Owner", owner);
    out += "</Version>";
  }
  for (const auto& p : result.common_prefixes) {
    out += "<CommonPrefixes>";
    Element(out, "Prefix", enc(p));
    out += "</CommonPrefixes>";
  }
  out += "</ListVersionsResult>";
  return out;
}

std::string VersioningConfigurationXml() {
  std::string out(kXmlDecl);
  fmt::format_to(std::back_inserter(out), "\n<VersioningConfiguration xmlns=\"{}\"/>",
                 kS3Namespace);
  return out;
}

std::string OwnerFullControlAclXml(std::string_view owner) {
  std::string out(kXmlDecl);
  fmt::format_to(std::back_inserter(out), "\n<AccessControlPolicy xmlns=\"{}\">", kS3Namespace);
  Owner(out, "Owner", owner);
  out +=
      "<AccessControlList><Grant><Grantee "
      "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"CanonicalUser\">";
  Element(out, "ID", owner);
  Element(out, "DisplayName", owner);
  out += "</Grantee><Permission>FULL_CONTROL</Permission></Grant></AccessControlList>";
  out += "</AccessControlPolicy>";
  return out;
}

std::string DeleteResultXml(const std::vector<std::string>& deleted,
                            const std::vector<DeleteObjectsFailure>& failed) {
  std::string out(kXmlDecl);
  fmt::format_to(std::back_inserter(out), "\n<DeleteResult xmlns=\"{}\">", kS3Namespace);
  for (const auto& key : deleted) {
    out += "<Deleted>";
    Element(out, "Key", key);
    out += "</Deleted>";
  }
  for (const auto& f : failed) {
    out += "<Error>";
    Element(out, "Key", f.key);
    Element(out, "Code", S3ErrorName(f.code));
    Element(out, "Message", f.message);
    out += "</Error>";
  }
  out += "</DeleteResult>";
  return out;
}

}  // namespace slipway::storage
