#include "base/log_format.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <spdlog/formatter.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <regex>
#include <sstream>

namespace slipway {
namespace {

// What a logger with the JSON formatter writes for these messages, one string per line.
std::vector<std::string> JsonLines(const std::vector<std::string>& messages,
                                   const std::string& logger_name = "slipway") {
  std::ostringstream out;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
  spdlog::logger logger(logger_name, sink);
  logger.set_formatter(MakeJsonLogFormatter());
  logger.set_level(spdlog::level::trace);
  for (size_t i = 0; i < messages.size(); ++i) {
    logger.log(i % 2 == 0 ? spdlog::level::info : spdlog::level::err, "{}", messages[i]);
  }
  std::vector<std::string> lines;
  std::istringstream in(out.str());
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

TEST(LogFormatTest, EveryRecordIsOneJsonObjectWithTimeLevelLoggerAndMessage) {
  const std::vector<std::string> messages = {
      "plain",
      "two\nlines and a \"quote\" and a \\ backslash",
      std::string("control \x01\x1f\x7f tab\t cr\r nul ") + std::string(1, '\0') + " end",
      "utf-8 stays: \xc3\xa9 \xe2\x82\xac \xf0\x9f\x9a\x80",
      "invalid: \xff \xc3 \xe2\x82 \xed\xa0\x80 \xc0\xaf end",
  };
  auto lines = JsonLines(messages, "gate\"way");
  ASSERT_EQ(lines.size(), messages.size()) << "a message with a line break stays on one line";
  const std::regex time(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z)");
  for (size_t i = 0; i < lines.size(); ++i) {
    auto j = nlohmann::json::parse(lines[i], nullptr, /*allow_exceptions=*/false);
    ASSERT_TRUE(j.is_object()) << lines[i];
    EXPECT_EQ(j.size(), 4u) << lines[i];
    EXPECT_TRUE(std::regex_match(j["time"].get<std::string>(), time)) << j["time"];
    EXPECT_EQ(j["level"], i % 2 == 0 ? "info" : "error");
    EXPECT_EQ(j["logger"], "gate\"way");
    if (i < 4) {
      EXPECT_EQ(j["message"], messages[i]) << lines[i];
    }
  }
  // Bytes that are not UTF-8 become U+FFFD, one per byte; the valid text around them stays.
  EXPECT_EQ(nlohmann::json::parse(lines[4])["message"],
            "invalid: \xef\xbf\xbd \xef\xbf\xbd \xef\xbf\xbd\xef\xbf\xbd "
            "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd \xef\xbf\xbd\xef\xbf\xbd end");
}

TEST(LogFormatTest, SetLogFormatAcceptsTextAndJsonOnly) {
  EXPECT_TRUE(SetLogFormat("json").ok());
  EXPECT_TRUE(SetLogFormat("text").ok());
  Status bad = SetLogFormat("yaml");
  EXPECT_EQ(bad.code(), Code::kInvalidArgument);
  EXPECT_NE(bad.message().find("use text or json"), std::string::npos);
}

}  // namespace
}  // namespace slipway
