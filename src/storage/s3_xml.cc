#include "storage/s3_xml.h"

#include <fmt/format.h>

#include "base/clock.h"
#include "net/http.h"

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
    case S3ErrorCode::kNotImplemented:
      return {"NotImplemented", 501};
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

std::string ListBucketsXml(const std::vector<BucketInfo>& buckets, std::string_view owner_id) {
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
  out += "</Buckets></ListAllMyBucketsResult>";
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
  if (!o.continuation_token.empty()) Element(out, "ContinuationToken", o.continuation_token);
  if (result.is_truncated) Element(out, "NextContinuationToken", result.next_continuation_token);
  if (!o.start_after.empty()) Element(out, "StartAfter", enc(o.start_after));
  for (const auto& obj : result.objects) {
    out += "<Contents>";
    Element(out, "Key", enc(obj.key));
    Element(out, "LastModified", FormatIso8601(obj.last_modified));
    Element(out, "ETag", obj.etag);
    Element(out, "Size", std::to_string(obj.size));
    Element(out, "StorageClass", "STANDARD");
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

std::string CompleteMultipartUploadXml(std::string_view location, std::string_view bucket,
                                       std::string_view key, std::string_view etag) {
  std::string out(kXmlDecl);
  fmt::format_to(std::back_inserter(out), "\n<CompleteMultipartUploadResult xmlns=\"{}\">",
                 kS3Namespace);
  Element(out, "Location", location);
  Element(out, "Bucket", bucket);
  Element(out, "Key", key);
  Element(out, "ETag", etag);
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
  }
  if (req.keys.empty() || req.keys.size() > 1000) {
    return MalformedXml("a Delete must name 1 to 1000 objects");
  }
  return req;
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
