#include "net/recording_writer.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace slipway::net {
namespace {

// A writer that notes which calls reached it.
class NotingWriter final : public ResponseWriter {
 public:
  Status WriteHead(int, const Headers&, std::optional<uint64_t>) override {
    head_ = true;
    return Status::Ok();
  }
  Status Write(std::string_view data) override {
    calls.push_back("Write " + std::to_string(data.size()));
    return Status::Ok();
  }
  Status WriteFile(int fd, uint64_t offset, uint64_t length) override {
    calls.push_back("WriteFile " + std::to_string(fd) + " " + std::to_string(offset) + " " +
                    std::to_string(length));
    return Status::Ok();
  }
  Status Finish() override { return Status::Ok(); }
  bool head_written() const override { return head_; }
  bool Abandoned() const override { return abandoned; }

  std::vector<std::string> calls;
  bool abandoned = false;

 private:
  bool head_ = false;
};

// A file handed to the recording writer reaches the connection as a file (so it can go out by
// sendfile), not read through a buffer into Write calls; its bytes are still counted.
TEST(RecordingWriterTest, PassesFilesOnAsFilesAndCountsTheirBytes) {
  NotingWriter inner;
  RecordingWriter recorded(inner);
  ASSERT_TRUE(recorded.WriteHead(200, {}, 1005).ok());
  ASSERT_TRUE(recorded.Write("hello").ok());
  ASSERT_TRUE(recorded.WriteFile(/*fd=*/7, /*offset=*/24, /*length=*/1000).ok());
  EXPECT_EQ(inner.calls, (std::vector<std::string>{"Write 5", "WriteFile 7 24 1000"}));
  EXPECT_EQ(recorded.status(), 200);
  EXPECT_EQ(recorded.body_bytes(), 1005u);
}

TEST(RecordingWriterTest, TellsWhetherTheClientIsGone) {
  NotingWriter inner;
  RecordingWriter recorded(inner);
  EXPECT_FALSE(recorded.Abandoned());
  inner.abandoned = true;
  EXPECT_TRUE(recorded.Abandoned());
}

}  // namespace
}  // namespace slipway::net
