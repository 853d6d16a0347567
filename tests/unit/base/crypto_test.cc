// AES-256-GCM sealing and constant-time comparison (base/crypto.h).
#include "base/crypto.h"

#include <gtest/gtest.h>

#include "base/duration.h"

namespace slipway {
namespace {

const std::string kKey(32, 'k');

TEST(AesGcmTest, OpensWhatItSealedAndOnlyThat) {
  auto sealed = AesGcmSeal(kKey, "the plaintext", "row-1");
  ASSERT_TRUE(sealed.ok()) << sealed.status().ToString();
  EXPECT_EQ(sealed->size(), 12 + 13 + 16u);
  EXPECT_EQ(sealed->find("plaintext"), std::string::npos);
  auto opened = AesGcmOpen(kKey, *sealed, "row-1");
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  EXPECT_EQ(*opened, "the plaintext");

  // A random nonce each time: the same plaintext never seals to the same bytes.
  EXPECT_NE(*sealed, AesGcmSeal(kKey, "the plaintext", "row-1").value());

  // Another key, another binding, or one changed bit: refused, never garbage.
  EXPECT_EQ(AesGcmOpen(std::string(32, 'x'), *sealed, "row-1").status().code(),
            Code::kPermissionDenied);
  EXPECT_EQ(AesGcmOpen(kKey, *sealed, "row-2").status().code(), Code::kPermissionDenied);
  for (size_t i : {size_t{0}, size_t{12}, sealed->size() - 1}) {
    std::string changed = *sealed;
    changed[i] ^= 1;
    EXPECT_EQ(AesGcmOpen(kKey, changed, "row-1").status().code(), Code::kPermissionDenied) << i;
  }
  EXPECT_EQ(AesGcmOpen(kKey, sealed->substr(0, 20), "row-1").status().code(),
            Code::kPermissionDenied);
}

TEST(AesGcmTest, EmptyPlaintextAndWrongKeySizes) {
  auto sealed = AesGcmSeal(kKey, "", "");
  ASSERT_TRUE(sealed.ok());
  EXPECT_EQ(AesGcmOpen(kKey, *sealed, "").value(), "");
  EXPECT_EQ(AesGcmSeal(std::string(16, 'k'), "x", "").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(AesGcmOpen(std::string(31, 'k'), *sealed, "").status().code(), Code::kInvalidArgument);
}

TEST(ConstantTimeEqualsTest, ComparesWholeStrings) {
  EXPECT_TRUE(ConstantTimeEquals("krane-token", "krane-token"));
  EXPECT_FALSE(ConstantTimeEquals("krane-token", "krane-tokeN"));
  EXPECT_FALSE(ConstantTimeEquals("krane-token", "krane-toke"));
  EXPECT_FALSE(ConstantTimeEquals("", "x"));
  EXPECT_TRUE(ConstantTimeEquals("", ""));
}

TEST(DurationTest, DaysForTokenExpiry) {
  EXPECT_EQ(ParseDuration("30d").value(), std::chrono::hours(24 * 30));
  EXPECT_EQ(ParseDuration("1d12h").value(), std::chrono::hours(36));
  EXPECT_EQ(FormatDuration(std::chrono::hours(48)), "2d");
  EXPECT_EQ(FormatDuration(std::chrono::hours(36)), "36h");
}

}  // namespace
}  // namespace slipway
