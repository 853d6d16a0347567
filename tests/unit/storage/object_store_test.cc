#include "storage/object_store.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <cstring>
#include <filesystem>
#include <thread>

#include "base/crypto.h"
#include "support/test_support.h"

namespace slipway::storage {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

// A body source over a string, handing out at most `step` bytes at a time.
BodySource FromString(std::string data, size_t step = 7) {
  auto state = std::make_shared<std::pair<std::string, size_t>>(std::move(data), 0);
  return [state, step](char* buf, size_t n) -> Result<size_t> {
    auto& [s, pos] = *state;
    size_t k = std::min({n, step, s.size() - pos});
    std::memcpy(buf, s.data() + pos, k);
    pos += k;
    return k;
  };
}

// A body source that delivers `good` bytes and then fails, as a dropped connection does.
BodySource FailingAfter(std::string good) {
  auto inner = FromString(std::move(good), 1 << 20);
  auto ended = std::make_shared<bool>(false);
  return [inner, ended](char* buf, size_t n) -> Result<size_t> {
    if (*ended) return Status::Unavailable("the client went away");
    auto r = inner(buf, n);
    if (r.ok() && *r == 0) {
      *ended = true;
      return Status::Unavailable("the client went away");
    }
    return r;
  };
}

std::string Md5Hex(std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), out, &len, EVP_md5(), nullptr);
  return HexEncode(std::string_view(reinterpret_cast<char*>(out), len));
}
std::string Md5Raw(std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), out, &len, EVP_md5(), nullptr);
  return std::string(reinterpret_cast<char*>(out), len);
}

std::string ReadAllOf(ObjectReader& r) {
  std::string out;
  char buf[5];
  for (;;) {
    auto n = r.Read(buf, sizeof buf);
    EXPECT_TRUE(n.ok()) << n.status().ToString();
    if (!n.ok() || *n == 0) return out;
    out.append(buf, *n);
  }
}

// Every regular file under dir, relative.
std::vector<std::string> FilesUnder(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) out.push_back(fs::relative(e.path(), dir).string());
  }
  return out;
}

class ObjectStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { Reopen(); }
  void Reopen(uint64_t max_size = 1 << 30) {
    store_.reset();
    auto s = ObjectStore::Open({dir_.str(), max_size, nullptr});
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
    if (!store_->BucketExists("bkt")) {
      ASSERT_TRUE(store_->CreateBucket("bkt").ok());
    }
  }
  Result<ObjectInfo> Put(std::string_view key, std::string data, PutOptions opts = {}) {
    return store_->PutObject("bkt", key, opts, FromString(std::move(data)));
  }
  std::string Get(std::string_view key) {
    auto r = store_->GetObject("bkt", key);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? ReadAllOf(*r) : "";
  }
  std::vector<std::string> Keys(const ListResult& r) {
    std::vector<std::string> out;
    for (const auto& o : r.objects) out.push_back(o.key);
    return out;
  }

  TempDir dir_;
  std::unique_ptr<ObjectStore> store_;
};

TEST(ObjectStoreKeys, RefusesKeysThatCouldEscapeOrAreMalformed) {
  for (std::string key :
       {std::string("../x"), std::string("a/../b"), std::string(".."), std::string("a/.."),
        std::string("/abs"), std::string("./a"), std::string("a//b"), std::string(""),
        std::string("a\0b", 3), std::string(1025, 'k')}) {
    Status st = ValidateObjectKey(key);
    EXPECT_EQ(st.code(), Code::kInvalidArgument) << "key accepted: " << key;
  }
}

TEST(ObjectStoreKeys, AcceptsWeirdButValidKeys) {
  const std::string longest(1024, 'k');
  for (std::string key : {"a b/ü/%2F", "a", "a/b", "folder/", "..a/b..", "x?y#z&w", "日本/語",
                          "a/.b", longest.c_str()}) {
    EXPECT_TRUE(ValidateObjectKey(key).ok()) << key << ": " << ValidateObjectKey(key).message();
  }
}

TEST(ObjectStoreKeys, BucketNamesFollowS3Rules) {
  for (const char* ok : {"abc", "my-bucket.1", "0aa", "a.b-c"}) {
    EXPECT_TRUE(ValidateBucketName(ok).ok()) << ok;
  }
  for (const char* bad :
       {"ab", "Abc", "-abc", "abc-", "a..b", "a_b", "192.168.1.1", "xn--abc", "a/b", "sthree-x",
        "amzn-s3-demo-x", "x-s3alias", "x--ol-s3", "x.mrap", "x--x-s3", "x--table-s3"}) {
    EXPECT_FALSE(ValidateBucketName(bad).ok()) << bad;
  }
  EXPECT_FALSE(ValidateBucketName(std::string(64, 'a')).ok());
}

TEST_F(ObjectStoreTest, PutGetHeadRoundTripWithMetadata) {
  PutOptions opts;
  opts.content_type = "text/plain";
  opts.metadata = {{"color", "blue\nred"}, {"x", "ü"}};
  auto put = Put("a b/ü/%2F", "hello world", opts);
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  EXPECT_EQ(put->etag, "\"" + Md5Hex("hello world") + "\"");
  EXPECT_EQ(Get("a b/ü/%2F"), "hello world");

  // Survives a restart: the index is rebuilt from the files.
  Reopen();
  auto head = store_->HeadObject("bkt", "a b/ü/%2F");
  ASSERT_TRUE(head.ok()) << head.status().ToString();
  EXPECT_EQ(head->size, 11u);
  EXPECT_EQ(head->etag, put->etag);
  EXPECT_EQ(head->content_type, "text/plain");
  EXPECT_EQ(head->metadata, opts.metadata);
  EXPECT_EQ(Get("a b/ü/%2F"), "hello world");
}

TEST_F(ObjectStoreTest, ConditionalWritesAndDeletesChangeNothingWhenTheyFail) {
  PutOptions once;
  once.conditions.if_none_match_any = true;
  auto first = Put("k", "first", once);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(Put("k", "second", once).status().code(), Code::kAborted);
  PutOptions match;
  match.conditions.if_match = "\"0123456789abcdef0123456789abcdef\"";
  EXPECT_EQ(Put("k", "third", match).status().code(), Code::kAborted);
  EXPECT_EQ(Put("absent", "x", match).status().code(), Code::kNotFound);
  EXPECT_EQ(Get("k"), "first");
  match.conditions.if_match = first->etag;
  ASSERT_TRUE(Put("k", "fourth", match).ok());
  EXPECT_EQ(Get("k"), "fourth");
  EXPECT_TRUE(FilesUnder(dir_.path() / "tmp").empty());

  DeleteConditions del;
  del.size = 99;
  EXPECT_EQ(store_->DeleteObject("bkt", "k", del).code(), Code::kAborted);
  EXPECT_EQ(Get("k"), "fourth");
  EXPECT_EQ(store_->DeleteObject("bkt", "missing", del).code(), Code::kNotFound);
  del.size = 6;
  del.if_match = "*";
  EXPECT_TRUE(store_->DeleteObject("bkt", "k", del).ok());
  EXPECT_EQ(store_->HeadObject("bkt", "k").status().code(), Code::kNotFound);
}

TEST(ObjectStoreEtags, ListsMatchQuotedUnquotedWeakAndStar) {
  EXPECT_TRUE(EtagListMatches("\"abc\"", "\"abc\""));
  EXPECT_TRUE(EtagListMatches("abc", "\"abc\""));
  EXPECT_TRUE(EtagListMatches("\"x\", W/\"abc\"", "\"abc\""));
  EXPECT_TRUE(EtagListMatches("*", "\"abc\""));
  EXPECT_FALSE(EtagListMatches("\"abd\"", "\"abc\""));
  EXPECT_FALSE(EtagListMatches("", "\"abc\""));
}

TEST_F(ObjectStoreTest, KeyAndKeySlashChildCoexist) {
  ASSERT_TRUE(Put("a", "parent").ok());
  ASSERT_TRUE(Put("a/b", "child").ok());
  EXPECT_EQ(Get("a"), "parent");
  EXPECT_EQ(Get("a/b"), "child");
}

TEST_F(ObjectStoreTest, ContentTypeDefaultsAndEmptyObjectsWork) {
  auto put = Put("empty", "");
  ASSERT_TRUE(put.ok());
  EXPECT_EQ(put->etag, "\"d41d8cd98f00b204e9800998ecf8427e\"");
  EXPECT_EQ(put->content_type, "binary/octet-stream");
  EXPECT_EQ(Get("empty"), "");
}

TEST_F(ObjectStoreTest, MissingThingsAreNotFound) {
  EXPECT_EQ(store_->GetObject("bkt", "nope").status().code(), Code::kNotFound);
  EXPECT_EQ(store_->GetObject("nobucket", "x").status().code(), Code::kNotFound);
  EXPECT_FALSE(store_->BucketExists("nobucket"));
  EXPECT_TRUE(store_->DeleteObject("bkt", "nope").ok());  // S3: 204 for a missing key
  EXPECT_EQ(store_->DeleteObject("nobucket", "x").code(), Code::kNotFound);
  EXPECT_EQ(Put("../x", "data").status().code(), Code::kInvalidArgument);
}

TEST_F(ObjectStoreTest, FailedReaderLeavesNoObjectNoTempAndKeepsTheOldOne) {
  ASSERT_TRUE(Put("k", "old contents").ok());
  auto put = store_->PutObject("bkt", "k", {}, FailingAfter(std::string(3 << 20, 'x')));
  EXPECT_EQ(put.status().code(), Code::kUnavailable);  // the reader's error, unchanged
  EXPECT_EQ(Get("k"), "old contents");
  auto fresh = store_->PutObject("bkt", "fresh", {}, FailingAfter("partial"));
  EXPECT_FALSE(fresh.ok());
  EXPECT_EQ(store_->GetObject("bkt", "fresh").status().code(), Code::kNotFound);
  EXPECT_TRUE(FilesUnder(dir_.path() / "tmp").empty());
  auto list = store_->ListObjects("bkt", {});
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(Keys(*list), std::vector<std::string>{"k"});
}

// Bytes that differ from block to block, so a block written twice, skipped or out of order
// shows up in the content and in the MD5.
std::string PatternBytes(size_t n) {
  std::string s(n, '\0');
  uint64_t x = 0x9e3779b97f4a7c15ull;
  for (size_t i = 0; i < n; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    s[i] = static_cast<char>(x);
  }
  return s;
}

// The ingest pipeline's edges: one block exactly, one byte over it, a body that wraps the ring
// of blocks several times with an unaligned tail, and one that ends on a block boundary.
TEST_F(ObjectStoreTest, LargeBodiesArriveWholeInOrderWithTheirMd5) {
  for (size_t size : {size_t{1} << 20, (size_t{1} << 20) + 1, (size_t{19} << 20) + 4097,
                      size_t{16} << 20}) {
    std::string data = PatternBytes(size);
    std::string key = "big-" + std::to_string(size);
    // Odd pieces, so block boundaries never line up with what the source hands out.
    auto put = store_->PutObject("bkt", key, {}, FromString(data, 65537));
    ASSERT_TRUE(put.ok()) << size << ": " << put.status().ToString();
    EXPECT_EQ(put->size, size);
    EXPECT_EQ(put->etag, "\"" + Md5Hex(data) + "\"") << size;
    auto reader = store_->GetObject("bkt", key);
    ASSERT_TRUE(reader.ok()) << reader.status().ToString();
    std::string back(size, '\0');
    size_t got = 0;
    while (got < size) {
      auto n = reader->Read(back.data() + got, size - got);
      ASSERT_TRUE(n.ok() && *n > 0) << size << " at " << got;
      got += *n;
    }
    EXPECT_TRUE(back == data) << size << ": the stored bytes differ";
  }
  EXPECT_TRUE(FilesUnder(dir_.path() / "tmp").empty());
  Reopen();
  auto head = store_->HeadObject("bkt", "big-" + std::to_string((size_t{19} << 20) + 4097));
  ASSERT_TRUE(head.ok()) << head.status().ToString();
  EXPECT_EQ(head->etag, "\"" + Md5Hex(PatternBytes((size_t{19} << 20) + 4097)) + "\"");
}

// Failures after the pipeline has wrapped its ring: the reader's error or the limit, and
// nothing is left behind.
TEST_F(ObjectStoreTest, LargeBodiesThatFailMidwayLeaveNothing) {
  auto broken = store_->PutObject("bkt", "k", {}, FailingAfter(PatternBytes(11 << 20)));
  EXPECT_EQ(broken.status().code(), Code::kUnavailable);
  Reopen(/*max_size=*/(9 << 20) + 5);
  auto over = store_->PutObject("bkt", "k", {}, FromString(PatternBytes(12 << 20), 1 << 20));
  EXPECT_EQ(over.status().code(), Code::kResourceExhausted);
  EXPECT_EQ(store_->GetObject("bkt", "k").status().code(), Code::kNotFound);
  EXPECT_TRUE(FilesUnder(dir_.path() / "tmp").empty());
  auto fits = store_->PutObject("bkt", "k", {}, FromString(PatternBytes((9 << 20) + 5), 1 << 20));
  ASSERT_TRUE(fits.ok()) << fits.status().ToString();
  EXPECT_EQ(fits->etag, "\"" + Md5Hex(PatternBytes((9 << 20) + 5)) + "\"");
}

TEST_F(ObjectStoreTest, ContentMd5MismatchIsRefusedAndStoresNothing) {
  PutOptions opts;
  opts.expected_md5 = Md5Raw("something else");
  EXPECT_EQ(Put("k", "data", opts).status().code(), Code::kDataLoss);
  EXPECT_EQ(store_->GetObject("bkt", "k").status().code(), Code::kNotFound);
  opts.expected_md5 = Md5Raw("data");
  EXPECT_TRUE(Put("k", "data", opts).ok());
}

TEST_F(ObjectStoreTest, ObjectsOverTheLimitAreRefused) {
  Reopen(/*max_size=*/10);
  EXPECT_EQ(Put("big", std::string(11, 'b')).status().code(), Code::kResourceExhausted);
  EXPECT_EQ(store_->GetObject("bkt", "big").status().code(), Code::kNotFound);
  EXPECT_TRUE(Put("small", std::string(10, 's')).ok());
}

TEST_F(ObjectStoreTest, TempFilesLeftByACrashAreRemovedOnOpen) {
  testing::WriteRandomFile(dir_.path() / "tmp" / "deadbeef", 100);
  Reopen();
  EXPECT_TRUE(FilesUnder(dir_.path() / "tmp").empty());
}

TEST_F(ObjectStoreTest, RangesFollowHttpSemantics) {
  ASSERT_TRUE(Put("r", "0123456789").ok());
  auto read = [&](std::string_view header) -> std::string {
    auto range = ParseRangeHeader(header);
    auto r = store_->GetObject("bkt", "r", range);
    if (!r.ok()) return "ERR:" + std::string(CodeName(r.status().code()));
    return ReadAllOf(*r);
  };
  EXPECT_EQ(read("bytes=2-4"), "234");
  EXPECT_EQ(read("bytes=7-"), "789");
  EXPECT_EQ(read("bytes=-3"), "789");
  EXPECT_EQ(read("bytes=8-100"), "89");
  EXPECT_EQ(read("bytes=-100"), "0123456789");
  EXPECT_EQ(read("bytes=10-"), "ERR:out_of_range");
  EXPECT_EQ(read("bytes=-0"), "ERR:out_of_range");
  EXPECT_FALSE(ParseRangeHeader("bytes=4-2"));
  EXPECT_FALSE(ParseRangeHeader("bytes=1-2,4-5"));
  EXPECT_FALSE(ParseRangeHeader("items=1-2"));
  auto r = store_->GetObject("bkt", "r", ParseRangeHeader("bytes=3-5"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->offset(), 3u);
  EXPECT_EQ(r->length(), 3u);
  EXPECT_TRUE(r->partial());
}

TEST_F(ObjectStoreTest, ListingWithPrefixDelimiterAndContinuation) {
  for (const char* k : {"a/1", "a/2", "a/b/3", "b", "c/x", "c/y", "d"}) ASSERT_TRUE(Put(k, k).ok());

  auto all = store_->ListObjects("bkt", {});
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(Keys(*all), (std::vector<std::string>{"a/1", "a/2", "a/b/3", "b", "c/x", "c/y", "d"}));
  EXPECT_FALSE(all->is_truncated);

  ListOptions o;
  o.delimiter = "/";
  auto top = store_->ListObjects("bkt", o);
  ASSERT_TRUE(top.ok());
  EXPECT_EQ(Keys(*top), (std::vector<std::string>{"b", "d"}));
  EXPECT_EQ(top->common_prefixes, (std::vector<std::string>{"a/", "c/"}));

  o.prefix = "a/";
  auto in_a = store_->ListObjects("bkt", o);
  ASSERT_TRUE(in_a.ok());
  EXPECT_EQ(Keys(*in_a), (std::vector<std::string>{"a/1", "a/2"}));
  EXPECT_EQ(in_a->common_prefixes, (std::vector<std::string>{"a/b/"}));

  // Paging two at a time with a delimiter visits each entry once, prefixes included.
  ListOptions page;
  page.delimiter = "/";
  page.max_keys = 1;
  std::vector<std::string> seen;
  for (int i = 0; i < 10; ++i) {
    auto r = store_->ListObjects("bkt", page);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    for (const auto& obj : r->objects) seen.push_back(obj.key);
    for (const auto& p : r->common_prefixes) seen.push_back(p);
    if (!r->is_truncated) break;
    EXPECT_FALSE(r->next_continuation_token.empty());
    page.continuation_token = r->next_continuation_token;
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"a/", "b", "c/", "d"}));

  ListOptions after;
  after.start_after = "b";
  auto r = store_->ListObjects("bkt", after);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(Keys(*r), (std::vector<std::string>{"c/x", "c/y", "d"}));

  // A v1 marker naming a common prefix resumes after everything rolled up into it.
  ListOptions marker;
  marker.delimiter = "/";
  marker.start_after = "a/";
  r = store_->ListObjects("bkt", marker);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(Keys(*r), (std::vector<std::string>{"b", "d"}));
  EXPECT_EQ(r->common_prefixes, (std::vector<std::string>{"c/"}));

  ListOptions bad;
  bad.continuation_token = "not-a-token";
  EXPECT_EQ(store_->ListObjects("bkt", bad).status().code(), Code::kInvalidArgument);
}

TEST_F(ObjectStoreTest, DeleteRemovesFromDiskAndListing) {
  ASSERT_TRUE(Put("gone", "x").ok());
  ASSERT_TRUE(store_->DeleteObject("bkt", "gone").ok());
  EXPECT_EQ(store_->GetObject("bkt", "gone").status().code(), Code::kNotFound);
  Reopen();
  EXPECT_TRUE(store_->ListObjects("bkt", {})->objects.empty());
}

TEST_F(ObjectStoreTest, BucketsCreateDeleteOnlyWhenEmpty) {
  EXPECT_EQ(store_->CreateBucket("bkt").code(), Code::kAlreadyExists);
  EXPECT_EQ(store_->CreateBucket("Bad_Name").code(), Code::kInvalidArgument);
  ASSERT_TRUE(Put("k", "v").ok());
  EXPECT_EQ(store_->DeleteBucket("bkt").code(), Code::kFailedPrecondition);
  ASSERT_TRUE(store_->DeleteObject("bkt", "k").ok());
  EXPECT_TRUE(store_->DeleteBucket("bkt").ok());
  EXPECT_FALSE(store_->BucketExists("bkt"));
  EXPECT_EQ(store_->DeleteBucket("bkt").code(), Code::kNotFound);
  ASSERT_TRUE(store_->CreateBucket("zzz").ok());
  ASSERT_TRUE(store_->CreateBucket("aaa").ok());
  auto buckets = store_->ListBuckets();
  ASSERT_EQ(buckets.size(), 2u);
  EXPECT_EQ(buckets[0].name, "aaa");
}

TEST_F(ObjectStoreTest, ConcurrentPutsOfOneKeyLeaveOneWholeObject) {
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      auto r = Put("same", std::string(100000, static_cast<char>('a' + i)));
      EXPECT_TRUE(r.ok()) << r.status().ToString();
    });
  }
  for (auto& t : threads) t.join();
  std::string got = Get("same");
  ASSERT_EQ(got.size(), 100000u);
  EXPECT_EQ(got, std::string(100000, got[0]));
  EXPECT_EQ(store_->HeadObject("bkt", "same")->etag, "\"" + Md5Hex(got) + "\"");
}

class ObjectStoreMultipartTest : public ObjectStoreTest {
 protected:
  Result<PartInfo> Part(const std::string& id, int n, std::string data) {
    return store_->UploadPart("bkt", "big", id, n, {}, FromString(std::move(data), 1 << 20));
  }
};

TEST_F(ObjectStoreMultipartTest, AssemblesPartsInOrderWithS3Etag) {
  PutOptions opts;
  opts.content_type = "application/x-tar";
  opts.metadata = {{"m", "v"}};
  auto id = store_->CreateMultipartUpload("bkt", "big", opts);
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  std::string p1(kMinPartSize, '1'), p2(kMinPartSize + 3, '2'), p3 = "tail";
  // Uploaded out of order, part 2 twice (the second wins).
  auto r3 = Part(*id, 3, p3);
  auto r2old = Part(*id, 2, std::string(kMinPartSize, 'x'));
  auto r1 = Part(*id, 1, p1);
  auto r2 = Part(*id, 2, p2);
  ASSERT_TRUE(r1.ok() && r2.ok() && r3.ok() && r2old.ok());
  EXPECT_EQ(r1->etag, "\"" + Md5Hex(p1) + "\"");

  auto done = store_->CompleteMultipartUpload(
      "bkt", "big", *id, {{1, r1->etag}, {2, r2->etag}, {3, Md5Hex(p3)}});  // quotes optional
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  std::string expected_etag = Md5Hex(Md5Raw(p1) + Md5Raw(p2) + Md5Raw(p3));
  EXPECT_EQ(done->etag, "\"" + expected_etag + "-3\"");
  EXPECT_EQ(done->size, p1.size() + p2.size() + p3.size());
  EXPECT_EQ(Get("big"), p1 + p2 + p3);
  auto head = store_->HeadObject("bkt", "big");
  EXPECT_EQ(head->content_type, "application/x-tar");
  EXPECT_EQ(head->metadata.at("m"), "v");
  // The upload is gone once completed: its parts are removed, only the record of the
  // completion stays, so that the same completion sent again answers the same.
  EXPECT_EQ(Part(*id, 4, "x").status().code(), Code::kNotFound);
  for (const auto& f : FilesUnder(dir_.path() / "uploads")) {
    EXPECT_EQ(f.find("part-"), std::string::npos) << f;
  }
  auto again = store_->CompleteMultipartUpload("bkt", "big", *id, {{1, r1->etag}});
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->etag, done->etag);
  EXPECT_EQ(store_->ListParts("bkt", "big", *id, 0, 1000).status().code(), Code::kNotFound);
  // The object remembers its parts' sizes, for GetObject with partNumber.
  EXPECT_EQ(head->part_sizes, (std::vector<uint64_t>{p1.size(), p2.size(), p3.size()}));
}

TEST_F(ObjectStoreMultipartTest, ListsPartsAndUploadsInOrderWithPaging) {
  auto a = store_->CreateMultipartUpload("bkt", "big", {});
  auto b = store_->CreateMultipartUpload("bkt", "big", {});
  ASSERT_TRUE(a.ok() && b.ok());
  for (int n : {3, 1, 2}) ASSERT_TRUE(Part(*a, n, std::string(n, 'x')).ok());
  auto page = store_->ListParts("bkt", "big", *a, 0, 2);
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  ASSERT_EQ(page->parts.size(), 2u);
  EXPECT_EQ(page->parts[0].part_number, 1);
  EXPECT_EQ(page->parts[1].size, 2u);
  EXPECT_TRUE(page->is_truncated);
  EXPECT_EQ(page->next_part_number_marker, 2);
  page = store_->ListParts("bkt", "big", *a, 2, 2);
  ASSERT_EQ(page->parts.size(), 1u);
  EXPECT_FALSE(page->is_truncated);
  auto uploads = store_->ListMultipartUploads("bkt", {});
  ASSERT_TRUE(uploads.ok());
  EXPECT_EQ(uploads->uploads.size(), 2u);
  ASSERT_TRUE(store_->AbortMultipartUpload("bkt", "big", *b).ok());
  uploads = store_->ListMultipartUploads("bkt", {});
  ASSERT_EQ(uploads->uploads.size(), 1u);
  EXPECT_EQ(uploads->uploads[0].upload_id, *a);
}

TEST_F(ObjectStoreMultipartTest, RefusesSmallPartsBadEtagsAndBadOrder) {
  auto id = store_->CreateMultipartUpload("bkt", "big", {});
  ASSERT_TRUE(id.ok());
  auto r1 = Part(*id, 1, "small");
  auto r2 = Part(*id, 2, "last");
  ASSERT_TRUE(r1.ok() && r2.ok());
  EXPECT_EQ(store_->CompleteMultipartUpload("bkt", "big", *id, {{1, r1->etag}, {2, r2->etag}})
                .status()
                .code(),
            Code::kFailedPrecondition);  // EntityTooSmall
  EXPECT_EQ(store_->CompleteMultipartUpload("bkt", "big", *id, {{2, r2->etag}, {1, r1->etag}})
                .status()
                .code(),
            Code::kOutOfRange);  // InvalidPartOrder
  EXPECT_EQ(store_->CompleteMultipartUpload("bkt", "big", *id, {{1, "\"0000\""}}).status().code(),
            Code::kInvalidArgument);  // InvalidPart
  EXPECT_EQ(store_->CompleteMultipartUpload("bkt", "big", *id, {{5, r1->etag}}).status().code(),
            Code::kInvalidArgument);  // never uploaded
  EXPECT_EQ(Part(*id, 0, "x").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(Part(*id, 10001, "x").status().code(), Code::kInvalidArgument);
  // A single small part is fine: it is the last.
  auto one = store_->CompleteMultipartUpload("bkt", "big", *id, {{1, r1->etag}});
  ASSERT_TRUE(one.ok()) << one.status().ToString();
  EXPECT_EQ(Get("big"), "small");
}

TEST_F(ObjectStoreMultipartTest, AbortAndForeignIdsAreNoSuchUpload) {
  auto id = store_->CreateMultipartUpload("bkt", "big", {});
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE(Part(*id, 1, "x").ok());
  // An id is bound to its bucket and key.
  EXPECT_EQ(store_->UploadPart("bkt", "other", *id, 1, {}, FromString("x")).status().code(),
            Code::kNotFound);
  EXPECT_EQ(Part("../../buckets", 1, "x").status().code(), Code::kNotFound);
  EXPECT_TRUE(store_->AbortMultipartUpload("bkt", "big", *id).ok());
  EXPECT_EQ(store_->AbortMultipartUpload("bkt", "big", *id).code(), Code::kNotFound);
  EXPECT_EQ(store_->CompleteMultipartUpload("bkt", "big", *id, {{1, "x"}}).status().code(),
            Code::kNotFound);
  EXPECT_EQ(store_->GetObject("bkt", "big").status().code(), Code::kNotFound);
}

}  // namespace
}  // namespace slipway::storage
