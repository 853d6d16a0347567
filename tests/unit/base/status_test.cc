#include "base/status.h"

#include <gtest/gtest.h>

#include "base/clock.h"
#include "base/crypto.h"

namespace slipway {
namespace {

TEST(StatusTest, CodeNamesRoundTripThroughConnectNames) {
  for (int i = 0; i <= static_cast<int>(Code::kUnauthenticated); ++i) {
    auto code = static_cast<Code>(i);
    EXPECT_EQ(CodeFromName(CodeName(code)), code) << CodeName(code);
  }
  EXPECT_EQ(CodeName(Code::kInvalidArgument), "invalid_argument");
  EXPECT_EQ(CodeFromName("no_such_code"), Code::kUnknown);
}

TEST(StatusTest, WithContextPrependsAndKeepsCode) {
  Status s = Status::NotFound("no object").WithContext("fetching context");
  EXPECT_EQ(s.code(), Code::kNotFound);
  EXPECT_EQ(s.message(), "fetching context: no object");
  EXPECT_TRUE(Status::Ok().WithContext("x").ok());
}

Result<int> Half(int v) {
  if (v % 2 != 0) return Status::InvalidArgument("odd");
  return v / 2;
}

Result<int> Quarter(int v) {
  SLIPWAY_ASSIGN_OR_RETURN(int h, Half(v));
  return Half(h);
}

TEST(StatusTest, AssignOrReturnPropagatesTheFirstFailure) {
  EXPECT_EQ(*Quarter(8), 2);
  EXPECT_EQ(Quarter(6).status().message(), "odd");
  EXPECT_EQ(Quarter(5).status().code(), Code::kInvalidArgument);
}

TEST(CryptoTest, Sha256AndHmacMatchKnownValues) {
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  // RFC 4231 test case 2.
  EXPECT_EQ(HexEncode(HmacSha256("Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  Sha256Stream s;
  s.Update("a");
  s.Update("bc");
  EXPECT_EQ(s.FinishHex(), Sha256Hex("abc"));
}

TEST(CryptoTest, Base64RoundTripsAndRejectsGarbage) {
  std::string out;
  EXPECT_EQ(Base64Encode("hello!?"), "aGVsbG8hPw==");
  ASSERT_TRUE(Base64Decode("aGVsbG8hPw==", &out));
  EXPECT_EQ(out, "hello!?");
  EXPECT_FALSE(Base64Decode("abc", &out));
}

TEST(ClockTest, AmzDateFormatsAndParses) {
  std::chrono::system_clock::time_point t;
  ASSERT_TRUE(ParseAmzDate("20130524T000000Z", &t));
  EXPECT_EQ(FormatAmzDate(t), "20130524T000000Z");
  EXPECT_EQ(FormatHttpDate(t), "Fri, 24 May 2013 00:00:00 GMT");
  EXPECT_EQ(FormatIso8601(t), "2013-05-24T00:00:00.000Z");
  EXPECT_FALSE(ParseAmzDate("2013-05-24T000000Z", &t));
  EXPECT_FALSE(ParseAmzDate("20131324T000000Z", &t));
}

}  // namespace
}  // namespace slipway

#include "base/ids.h"

namespace slipway {
namespace {

TEST(IdsTest, NewIdsAreUniqueAndDnsSafe) {
  std::string a = NewId("dep"), b = NewId("dep");
  EXPECT_NE(a, b);
  ASSERT_EQ(a.size(), 4u + 16u);
  EXPECT_EQ(a.substr(0, 4), "dep_");
  for (char c : a.substr(4)) EXPECT_TRUE((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) << a;
  EXPECT_EQ(ShortId(a), a.substr(4, 8));
  EXPECT_EQ(ShortId("plain"), "plain");
}

}  // namespace
}  // namespace slipway

#include "base/duration.h"

namespace slipway {
namespace {

TEST(DurationTest, ParsesUnitsAndBareSeconds) {
  EXPECT_EQ(*ParseDuration("250ms"), std::chrono::milliseconds(250));
  EXPECT_EQ(*ParseDuration("15s"), std::chrono::seconds(15));
  EXPECT_EQ(*ParseDuration("5m"), std::chrono::minutes(5));
  EXPECT_EQ(*ParseDuration("1h30m"), std::chrono::minutes(90));
  EXPECT_EQ(*ParseDuration("90"), std::chrono::seconds(90));
  EXPECT_EQ(*ParseDuration("1.5s"), std::chrono::milliseconds(1500));
}

TEST(DurationTest, RefusesGarbageWithAHint) {
  for (const char* bad : {"", "m", "5x", "5m3", "-1s", "1 s"}) {
    auto r = ParseDuration(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.status().message().find("250ms"), std::string::npos);
  }
}

TEST(DurationTest, FormatsShortest) {
  EXPECT_EQ(FormatDuration(std::chrono::minutes(5)), "5m");
  EXPECT_EQ(FormatDuration(std::chrono::milliseconds(1500)), "1.5s");
  EXPECT_EQ(FormatDuration(std::chrono::milliseconds(250)), "250ms");
  EXPECT_EQ(FormatDuration(std::chrono::seconds(15)), "15s");
}

}  // namespace
}  // namespace slipway
