// The mapping from dockerd's container State to instance phases, on inspect documents recorded
// from dockerd 20.10 (tests/unit/krane/testdata/inspect_*.json), and the log demultiplexer on a
// recorded logs response.
#include "krane/docker/container_state.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "support/test_support.h"

namespace slipway::krane::docker {
namespace {

using Phase = ContainerVerdict::Phase;

std::string TestData(const std::string& name) {
  return testing::ReadFile(testing::SourceDir() / "tests/unit/krane/testdata" / name);
}

ContainerVerdict JudgeRecorded(const std::string& name) {
  return JudgeContainer(nlohmann::json::parse(TestData(name)));
}

std::string Frame(uint8_t stream, std::string_view payload) {
  std::string f(8, '\0');
  f[0] = static_cast<char>(stream);
  const auto n = static_cast<uint32_t>(payload.size());
  f[4] = static_cast<char>(n >> 24);
  f[5] = static_cast<char>(n >> 16);
  f[6] = static_cast<char>(n >> 8);
  f[7] = static_cast<char>(n);
  return f + std::string(payload);
}

TEST(KraneContainerStateTest, ExitedContainerFailsWithItsExitCode) {
  ContainerVerdict v = JudgeRecorded("inspect_exited.json");
  EXPECT_EQ(v.phase, Phase::kFailed);
  EXPECT_EQ(v.reason, "exited with exit code 3");
}

// What dockerd leaves of a container it stopped when it shut down: exited by SIGTERM (or
// SIGKILL after the stop timeout), not OOM-killed. Its restart policy starts it again when
// dockerd is back, so it is PENDING; without such a policy, or OOM-killed, it failed.
TEST(KraneContainerStateTest, ContainerStoppedByADockerdShutdownIsPendingNotFailed) {
  nlohmann::json inspect = nlohmann::json::parse(TestData("inspect_exited.json"));
  inspect["HostConfig"]["RestartPolicy"]["Name"] = "unless-stopped";
  for (int code : {143, 137}) {
    inspect["State"]["ExitCode"] = code;
    ContainerVerdict v = JudgeContainer(inspect);
    EXPECT_EQ(v.phase, Phase::kStarting) << code;
    EXPECT_NE(v.reason.find("exit code " + std::to_string(code)), std::string::npos) << v.reason;
    EXPECT_NE(v.reason.find("restart policy"), std::string::npos) << v.reason;
  }
  inspect["State"]["OOMKilled"] = true;
  EXPECT_EQ(JudgeContainer(inspect).phase, Phase::kFailed) << "OOM-killed is the app's failure";
  inspect["State"]["OOMKilled"] = false;
  inspect["State"]["ExitCode"] = 3;
  EXPECT_EQ(JudgeContainer(inspect).phase, Phase::kFailed) << "an exit of its own is a failure";
  inspect["State"]["ExitCode"] = 143;
  inspect["HostConfig"]["RestartPolicy"]["Name"] = "no";
  EXPECT_EQ(JudgeContainer(inspect).phase, Phase::kFailed) << "nothing would start it again";
}

TEST(KraneContainerStateTest, OomKilledContainerSaysOutOfMemory) {
  ContainerVerdict v = JudgeRecorded("inspect_oom.json");
  EXPECT_EQ(v.phase, Phase::kFailed);
  EXPECT_EQ(v.reason, "out of memory (OOM-killed), exit code 137");
}

TEST(KraneContainerStateTest, RestartingContainerIsACrashLoopNotPending) {
  ContainerVerdict v = JudgeRecorded("inspect_restarting.json");
  EXPECT_EQ(v.phase, Phase::kFailed);
  EXPECT_NE(v.reason.find("exit code 3"), std::string::npos) << v.reason;
  EXPECT_NE(v.reason.find("crash loop"), std::string::npos) << v.reason;
  EXPECT_GT(v.restart_count, 0);
}

TEST(KraneContainerStateTest, RunningContainerNeedsAProbe) {
  ContainerVerdict v = JudgeRecorded("inspect_running.json");
  EXPECT_EQ(v.phase, Phase::kProbe);
  EXPECT_EQ(v.restart_count, 0);
  EXPECT_FALSE(v.crashed_before);
}

TEST(KraneContainerStateTest, RunningAfterRestartsIsACrashLoopIfItDoesNotAnswer) {
  // dockerd resets ExitCode to 0 when it restarts a container; only RestartCount remains.
  ContainerVerdict v = JudgeRecorded("inspect_running_after_restarts.json");
  EXPECT_EQ(v.phase, Phase::kProbe);
  EXPECT_TRUE(v.crashed_before);
  EXPECT_EQ(v.restart_count, 9);
  EXPECT_EQ(v.reason, "exited, restarted 9 times (crash loop)");
}

TEST(KraneContainerStateTest, RunningWithOomKilledFlagKeepsTheOomReason) {
  auto doc = nlohmann::json::parse(TestData("inspect_running_after_restarts.json"));
  doc["State"]["OOMKilled"] = true;
  doc["RestartCount"] = 3;
  ContainerVerdict v = JudgeContainer(doc);
  EXPECT_EQ(v.phase, Phase::kProbe);
  EXPECT_TRUE(v.crashed_before);
  EXPECT_TRUE(v.oom_killed);
  EXPECT_EQ(v.reason, "out of memory (OOM-killed), restarted 3 times (crash loop)");
}

TEST(KraneContainerStateTest, LastExitComesFromRecordedDieEvents) {
  auto exit3 = LastExitFromEvents(TestData("events_exit3_crash_loop.jsonl"));
  ASSERT_TRUE(exit3.has_value());
  EXPECT_EQ(exit3->exit_code, 3);
  EXPECT_FALSE(exit3->oom_killed);

  auto oom = LastExitFromEvents(TestData("events_oom_crash_loop.jsonl"));
  ASSERT_TRUE(oom.has_value());
  EXPECT_EQ(oom->exit_code, 137);
  EXPECT_TRUE(oom->oom_killed);
}

TEST(KraneContainerStateTest, LastExitIsTheLatestDieAndOnlyItsOwnOom) {
  const std::string events = R"({"Action":"oom","Actor":{"Attributes":{}}})"
                             "\n"
                             R"({"Action":"die","Actor":{"Attributes":{"exitCode":"137"}}})"
                             "\n"
                             R"({"Action":"die","Actor":{"Attributes":{"exitCode":"2"}}})"
                             "\n"
                             "not json\n";
  auto last = LastExitFromEvents(events);
  ASSERT_TRUE(last.has_value());
  EXPECT_EQ(last->exit_code, 2);
  EXPECT_FALSE(last->oom_killed);
  EXPECT_FALSE(LastExitFromEvents(R"({"Action":"oom"})").has_value());
  EXPECT_FALSE(LastExitFromEvents("").has_value());
}

TEST(KraneContainerStateTest, CreatedContainerIsStarting) {
  ContainerVerdict v = JudgeRecorded("inspect_created.json");
  EXPECT_EQ(v.phase, Phase::kStarting);
}

TEST(KraneContainerStateTest, CreatedContainerWhoseStartFailedIsFailed) {
  auto doc = nlohmann::json::parse(TestData("inspect_created.json"));
  doc["State"]["Error"] = "exec: \"/app\": stat /app: no such file or directory";
  doc["State"]["ExitCode"] = 127;
  ContainerVerdict v = JudgeContainer(doc);
  EXPECT_EQ(v.phase, Phase::kFailed);
  EXPECT_NE(v.reason.find("no such file or directory"), std::string::npos) << v.reason;
}

TEST(KraneContainerStateTest, DeadAndRemovingStates) {
  auto doc = nlohmann::json::parse(TestData("inspect_exited.json"));
  doc["State"]["Status"] = "dead";
  EXPECT_EQ(JudgeContainer(doc).phase, Phase::kFailed);
  doc["State"]["Status"] = "removing";
  EXPECT_EQ(JudgeContainer(doc).phase, Phase::kTerminating);
}

TEST(KraneContainerStateTest, MalformedDocumentsAreStartingNotCrashes) {
  EXPECT_EQ(JudgeContainer(nlohmann::json()).phase, Phase::kStarting);
  EXPECT_EQ(JudgeContainer(nlohmann::json::parse(R"({"State": 7})")).phase, Phase::kStarting);
  EXPECT_EQ(
      JudgeContainer(nlohmann::json::parse(R"({"State": {"Status": "exited", "ExitCode": "x"}})"))
          .reason,
      "exited with exit code 0");
}

TEST(KraneLogsTest, DemultiplexesARecordedLogsResponse) {
  const std::string raw = TestData("logs_exited.bin");
  ASSERT_EQ(raw.size(), 13u);  // one 8-byte header + "boom\n"
  EXPECT_EQ(DemultiplexLogs(raw), "boom\n");
}

TEST(KraneLogsTest, JoinsStdoutAndStderrFramesInOrder) {
  std::string raw = Frame(1, "starting\n") + Frame(2, "boo") + Frame(2, "m\n") + Frame(1, "");
  EXPECT_EQ(DemultiplexLogs(raw), "starting\nboom\n");
}

TEST(KraneLogsTest, FrameLargerThan255BytesUsesAllFourSizeBytes) {
  std::string big(70000, 'x');
  EXPECT_EQ(DemultiplexLogs(Frame(1, big) + Frame(2, "end")), big + "end");
}

TEST(KraneLogsTest, TruncatedLastFrameKeepsWhatArrived) {
  std::string raw = Frame(1, "hello\n") + Frame(2, "partial line");
  raw.resize(raw.size() - 5);
  EXPECT_EQ(DemultiplexLogs(raw), "hello\npartial");
}

TEST(KraneLogsTest, TtyOutputWithoutHeadersIsReturnedAsIs) {
  EXPECT_EQ(DemultiplexLogs("plain tty output\n"), "plain tty output\n");
  EXPECT_EQ(DemultiplexLogs(""), "");
}

TEST(KraneLogsTest, LastLinesKeepsTheEnd) {
  EXPECT_EQ(LastLines("a\nb\nc\n", 2), "b\nc");
  EXPECT_EQ(LastLines("a\nb\nc", 1), "c");
  EXPECT_EQ(LastLines("a\nb\nc\n", 20), "a\nb\nc");
  EXPECT_EQ(LastLines("only", 3), "only");
  EXPECT_EQ(LastLines("\n\n", 3), "");
  EXPECT_EQ(LastLines("a\nb", 0), "");
}

TEST(KraneLogsTest, RecordedCrashLoopLogTailIsTwentyBooms) {
  std::string text = DemultiplexLogs(TestData("logs_restarting.bin"));
  std::string tail = LastLines(text, 3);
  EXPECT_EQ(tail, "boom\nboom\nboom");
}

}  // namespace
}  // namespace slipway::krane::docker

namespace slipway::krane::docker {
namespace {

TEST(TimestampedLogLinesTest, LinesCarryTheirTimeAndStreamAcrossFrames) {
  std::string raw = Frame(1, "2026-12-01T22:30:00.123456789Z hello\n2026-12-01T22:30:01Z par") +
                    Frame(2, "2026-12-01T22:30:00.5Z oops\r\n") + Frame(1, "tial\n");
  auto lines = TimestampedLogLines(DemultiplexLogFrames(raw));
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0].text, "hello");
  EXPECT_EQ(lines[0].stream, "stdout");
  EXPECT_EQ(lines[0].time_ns, 1796164200123456789LL);  // date -d 2026-12-01T22:30:00Z +%s
  EXPECT_EQ(lines[1].text, "oops");
  EXPECT_EQ(lines[1].stream, "stderr");
  EXPECT_EQ(lines[1].time_ns, 1796164200500000000LL);
  EXPECT_EQ(lines[2].text, "partial") << "a line split over two frames of one stream";
  EXPECT_EQ(lines[2].time_ns, 1796164201000000000LL);
  auto no_time = TimestampedLogLines({{1, "not a timestamp\n"}});
  ASSERT_EQ(no_time.size(), 1u);
  EXPECT_EQ(no_time[0].time_ns, 0);
  EXPECT_EQ(no_time[0].text, "not a timestamp");
}

}  // namespace
}  // namespace slipway::krane::docker
