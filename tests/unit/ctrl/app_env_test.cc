// SecretBox (ctrl/app_env.h): the key's form, sealing bound to project, environment and name,
// and errors that say what to do.
#include "ctrl/app_env.h"

#include <gtest/gtest.h>

namespace slipway::ctrl {
namespace {

const std::string kKeyHex = std::string(32, 'a') + std::string(32, '0');

TEST(SecretBoxTest, SealsBoundToItsPlace) {
  auto box = SecretBox::FromKeyText(kKeyHex);
  ASSERT_TRUE(box.ok()) << box.status().ToString();
  auto sealed = box->Seal("prj_1", "production", "API_KEY", "s3cr3t-value");
  ASSERT_TRUE(sealed.ok()) << sealed.status().ToString();
  EXPECT_EQ(sealed->rfind("aesgcm1:", 0), 0u);
  EXPECT_EQ(sealed->find("s3cr3t"), std::string::npos);
  EXPECT_EQ(box->Open("prj_1", "production", "API_KEY", *sealed).value(), "s3cr3t-value");

  // Copied to another project, environment or name, it does not open.
  for (auto [p, e, n] :
       {std::tuple{"prj_2", "production", "API_KEY"}, std::tuple{"prj_1", "", "API_KEY"},
        std::tuple{"prj_1", "production", "OTHER"}}) {
    auto moved = box->Open(p, e, n, *sealed);
    ASSERT_FALSE(moved.ok());
    EXPECT_EQ(moved.status().code(), Code::kFailedPrecondition);
    EXPECT_NE(moved.status().message().find("SLIPWAY_SECRET_KEY"), std::string::npos);
  }
  // Under another key: says so, names the variable, never the value.
  auto other = SecretBox::FromKeyText(std::string(64, 'b')).value();
  auto wrong = other.Open("prj_1", "production", "API_KEY", *sealed);
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.status().message().find("API_KEY"), std::string::npos);
  EXPECT_NE(wrong.status().message().find("another key"), std::string::npos);
  EXPECT_EQ(wrong.status().message().find("s3cr3t"), std::string::npos);
  EXPECT_EQ(box->Open("prj_1", "production", "API_KEY", "plain").status().code(),
            Code::kFailedPrecondition);
}

TEST(SecretBoxTest, MissingAndMalformedKeys) {
  auto none = SecretBox::FromKeyText("");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_key());
  auto refused = none->Seal("prj_1", "", "API_KEY", "v");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Code::kFailedPrecondition);
  EXPECT_NE(refused.status().message().find("no SLIPWAY_SECRET_KEY"), std::string::npos);
  EXPECT_NE(refused.status().message().find("openssl rand -hex 32"), std::string::npos);

  for (const std::string& bad :
       {std::string("short"), std::string(64, 'z'), std::string(63, 'a'), std::string(32, 'a')}) {
    auto box = SecretBox::FromKeyText(bad);
    ASSERT_FALSE(box.ok()) << bad;
    EXPECT_EQ(box.status().code(), Code::kInvalidArgument);
    EXPECT_NE(box.status().message().find("64 hex digits"), std::string::npos);
  }
  EXPECT_TRUE(SecretBox::FromKeyText(std::string(64, 'F')).ok());
}

TEST(SecretBoxTest, VariableNames) {
  EXPECT_TRUE(ValidateEnvVarName("DATABASE_URL").ok());
  EXPECT_TRUE(ValidateEnvVarName("_x1").ok());
  for (const char* bad : {"", "1X", "A-B", "A=B", "A B", "Ä"}) {
    EXPECT_EQ(ValidateEnvVarName(bad).code(), Code::kInvalidArgument) << bad;
  }
}

}  // namespace
}  // namespace slipway::ctrl
