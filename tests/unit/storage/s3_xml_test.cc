#include "storage/s3_xml.h"

#include <gtest/gtest.h>

namespace slipway::storage {
namespace {

TEST(S3XmlTest, ErrorCodesCarryS3NamesAndStatuses) {
  struct Case {
    S3ErrorCode code;
    std::string_view name;
    int status;
  };
  for (const Case& c : std::initializer_list<Case>{
           {S3ErrorCode::kSignatureDoesNotMatch, "SignatureDoesNotMatch", 403},
           {S3ErrorCode::kAccessDenied, "AccessDenied", 403},
           {S3ErrorCode::kInvalidAccessKeyId, "InvalidAccessKeyId", 403},
           {S3ErrorCode::kRequestTimeTooSkewed, "RequestTimeTooSkewed", 403},
           {S3ErrorCode::kAuthorizationHeaderMalformed, "AuthorizationHeaderMalformed", 400},
           {S3ErrorCode::kNoSuchKey, "NoSuchKey", 404},
           {S3ErrorCode::kNoSuchBucket, "NoSuchBucket", 404},
           {S3ErrorCode::kNoSuchUpload, "NoSuchUpload", 404},
           {S3ErrorCode::kBucketAlreadyOwnedByYou, "BucketAlreadyOwnedByYou", 409},
           {S3ErrorCode::kBucketNotEmpty, "BucketNotEmpty", 409},
           {S3ErrorCode::kEntityTooLarge, "EntityTooLarge", 400},
           {S3ErrorCode::kEntityTooSmall, "EntityTooSmall", 400},
           {S3ErrorCode::kInvalidArgument, "InvalidArgument", 400},
           {S3ErrorCode::kInvalidRange, "InvalidRange", 416},
           {S3ErrorCode::kInvalidPart, "InvalidPart", 400},
           {S3ErrorCode::kInvalidPartOrder, "InvalidPartOrder", 400},
           {S3ErrorCode::kBadDigest, "BadDigest", 400},
           {S3ErrorCode::kXAmzContentSHA256Mismatch, "XAmzContentSHA256Mismatch", 400},
           {S3ErrorCode::kMethodNotAllowed, "MethodNotAllowed", 405},
           {S3ErrorCode::kNotImplemented, "NotImplemented", 501},
           {S3ErrorCode::kInternalError, "InternalError", 500},
           {S3ErrorCode::kMissingContentLength, "MissingContentLength", 411},
       }) {
    EXPECT_EQ(S3ErrorName(c.code), c.name);
    EXPECT_EQ(S3ErrorStatus(c.code), c.status) << c.name;
  }
}

TEST(S3XmlTest, ErrorBodyIsEscaped) {
  std::string xml = ErrorXml(S3ErrorCode::kNoSuchKey, "no <key> \"a&b\"", "/bkt/a&b", "req-1");
  EXPECT_NE(xml.find("<Error><Code>NoSuchKey</Code>"), std::string::npos) << xml;
  EXPECT_NE(xml.find("<Message>no &lt;key&gt; &quot;a&amp;b&quot;</Message>"), std::string::npos);
  EXPECT_NE(xml.find("<Resource>/bkt/a&amp;b</Resource>"), std::string::npos);
  EXPECT_NE(xml.find("<RequestId>req-1</RequestId></Error>"), std::string::npos);
}

TEST(S3XmlTest, EscapeAndUnescapeRoundTrip) {
  std::string text = "a<b>&\"c'\r ü";
  std::string back;
  ASSERT_TRUE(XmlUnescape(XmlEscape(text), &back));
  EXPECT_EQ(back, text);
  ASSERT_TRUE(XmlUnescape("&#65;&#x42;&#xFC;", &back));
  EXPECT_EQ(back, "AB\xC3\xBC");
  EXPECT_FALSE(XmlUnescape("&bogus;", &back));
  EXPECT_FALSE(XmlUnescape("&amp", &back));
}

TEST(S3XmlTest, ListObjectsV2CarriesPagingAndUrlEncoding) {
  ListObjectsV2Request req;
  req.bucket = "bkt";
  req.options.prefix = "a b/";
  req.options.delimiter = "/";
  req.options.max_keys = 2;
  req.encoding_type_url = true;
  ListResult res;
  ObjectInfo o;
  o.key = "a b/ü&x";
  o.size = 5;
  o.etag = "\"abc\"";
  res.objects.push_back(o);
  res.common_prefixes = {"a b/sub/"};
  res.is_truncated = true;
  res.next_continuation_token = "tok==";
  std::string xml = ListObjectsV2Xml(req, res);
  EXPECT_NE(xml.find("<Name>bkt</Name><Prefix>a%20b/</Prefix>"), std::string::npos) << xml;
  EXPECT_NE(xml.find("<KeyCount>2</KeyCount><IsTruncated>true</IsTruncated>"), std::string::npos);
  EXPECT_NE(xml.find("<NextContinuationToken>tok==</NextContinuationToken>"), std::string::npos);
  EXPECT_NE(xml.find("<Key>a%20b/%C3%BC%26x</Key>"), std::string::npos);
  EXPECT_NE(xml.find("<ETag>&quot;abc&quot;</ETag><Size>5</Size>"), std::string::npos);
  EXPECT_NE(xml.find("<CommonPrefixes><Prefix>a%20b/sub/</Prefix></CommonPrefixes>"),
            std::string::npos);
  EXPECT_NE(xml.find("<EncodingType>url</EncodingType>"), std::string::npos);

  req.encoding_type_url = false;
  xml = ListObjectsV2Xml(req, res);
  EXPECT_NE(xml.find("<Key>a b/ü&amp;x</Key>"), std::string::npos) << xml;
}

TEST(S3XmlTest, ParsesCompleteMultipartUpload) {
  auto parts = ParseCompleteMultipartUpload(
      R"(<?xml version="1.0" encoding="UTF-8"?>
<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Part><ETag>&quot;aaa&quot;</ETag><PartNumber>1</PartNumber></Part>
  <Part>
    <PartNumber> 2 </PartNumber>
    <ETag>"bbb"</ETag>
    <ChecksumCRC32>AAAAAA==</ChecksumCRC32>
  </Part>
</CompleteMultipartUpload>)");
  ASSERT_TRUE(parts.ok()) << parts.status().ToString();
  ASSERT_EQ(parts->size(), 2u);
  EXPECT_EQ((*parts)[0].part_number, 1);
  EXPECT_EQ((*parts)[0].etag, "\"aaa\"");
  EXPECT_EQ((*parts)[1].part_number, 2);
  EXPECT_EQ((*parts)[1].etag, "\"bbb\"");
  EXPECT_TRUE((*parts)[0].checksums.empty());
  EXPECT_EQ((*parts)[1].checksums,
            (std::map<std::string, std::string>{{"x-amz-checksum-crc32", "AAAAAA=="}}));

  EXPECT_FALSE(ParseCompleteMultipartUpload("<nope/>").ok());
  EXPECT_FALSE(ParseCompleteMultipartUpload(
                   "<CompleteMultipartUpload><Part><PartNumber>x</PartNumber><ETag>a</ETag>"
                   "</Part></CompleteMultipartUpload>")
                   .ok());
  EXPECT_FALSE(
      ParseCompleteMultipartUpload("<CompleteMultipartUpload></CompleteMultipartUpload>").ok());
}

TEST(S3XmlTest, MultipartDocumentsCarryChecksums) {
  ListPartsRequest req;
  req.bucket = "b";
  req.key = "k";
  req.upload_id = "u";
  ListPartsResult res;
  res.checksum_algorithm = "SHA256";
  res.checksum_type = "COMPOSITE";
  PartInfo part;
  part.part_number = 1;
  part.checksums["x-amz-checksum-sha256"] = "c2hh";
  res.parts.push_back(part);
  std::string xml = ListPartsXml(req, res);
  EXPECT_NE(xml.find("<ChecksumSHA256>c2hh</ChecksumSHA256></Part>"), std::string::npos) << xml;
  EXPECT_NE(xml.find("<ChecksumAlgorithm>SHA256</ChecksumAlgorithm>"
                     "<ChecksumType>COMPOSITE</ChecksumType>"),
            std::string::npos)
      << xml;

  ObjectInfo object;
  object.etag = "\"e-2\"";
  object.checksums["x-amz-checksum-crc32c"] = "AAAAAA==-2";
  object.checksum_type = "COMPOSITE";
  object.part_checksums = {"AQIDBA==", "BQYHCA=="};
  object.part_sizes = {5, 6};
  xml = CompleteMultipartUploadXml("http://x/b/k", "b", "k", object);
  EXPECT_NE(xml.find("<ChecksumCRC32C>AAAAAA==-2</ChecksumCRC32C>"
                     "<ChecksumType>COMPOSITE</ChecksumType>"),
            std::string::npos)
      << xml;
  // GetObjectAttributes: the composite checksum without its part count, each part's own.
  ObjectAttributesRequest attrs;
  attrs.checksum = attrs.object_parts = true;
  xml = ObjectAttributesXml(attrs, object);
  EXPECT_NE(xml.find("<Checksum><ChecksumCRC32C>AAAAAA==</ChecksumCRC32C>"
                     "<ChecksumType>COMPOSITE</ChecksumType></Checksum>"),
            std::string::npos)
      << xml;
  EXPECT_NE(xml.find("<Size>6</Size><ChecksumCRC32C>BQYHCA==</ChecksumCRC32C>"),
            std::string::npos)
      << xml;
  // An object written in one piece: its checksum is FULL_OBJECT.
  ObjectInfo single;
  single.checksums["x-amz-checksum-crc32"] = "AAAAAA==";
  xml = ObjectAttributesXml(attrs, single);
  EXPECT_NE(xml.find("<ChecksumType>FULL_OBJECT</ChecksumType>"), std::string::npos) << xml;
}

TEST(S3XmlTest, ParsesDeleteObjectsAndWritesTheResult) {
  auto req = ParseDeleteObjects(
      "<Delete><Object><Key>a&amp;b</Key></Object><Object><Key>c/d</Key><VersionId/></Object>"
      "<Quiet>true</Quiet></Delete>");
  ASSERT_TRUE(req.ok()) << req.status().ToString();
  EXPECT_EQ(req->keys, (std::vector<std::string>{"a&b", "c/d"}));
  EXPECT_TRUE(req->quiet);
  EXPECT_FALSE(ParseDeleteObjects("<Delete></Delete>").ok());

  std::string xml = DeleteResultXml({"a&b"}, {{"../x", S3ErrorCode::kInvalidArgument, "bad"}});
  EXPECT_NE(xml.find("<Deleted><Key>a&amp;b</Key></Deleted>"), std::string::npos) << xml;
  EXPECT_NE(xml.find("<Error><Key>../x</Key><Code>InvalidArgument</Code>"), std::string::npos);
}

TEST(S3XmlTest, ListBucketsAndLocation) {
  std::string xml = ListBucketsXml({{"one", {}}, {"two", {}}}, "slipway");
  EXPECT_NE(xml.find("<Bucket><Name>one</Name><CreationDate>1970-01-01T00:00:00.000Z"),
            std::string::npos)
      << xml;
  EXPECT_NE(LocationConstraintXml("us-east-1").find("></LocationConstraint>"), std::string::npos);
  EXPECT_NE(LocationConstraintXml("eu-west-1").find(">eu-west-1</LocationConstraint>"),
            std::string::npos);
}

}  // namespace
}  // namespace slipway::storage
