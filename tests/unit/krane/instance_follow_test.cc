// FollowDeployment on a scripted backend: the instances at once, then only what changed; an
// event wakes it although its safety poll is an hour; a PENDING instance is read again without
// any event (the readiness probe decides RUNNING); until_settled ends the follow at the first
// settled message; a deployment that disappears ends it with NotFound.
#include "krane/instance_follow.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

namespace slipway::krane {
namespace {

using namespace std::chrono_literals;

Instance Make(InstanceStatus status) { return {"dep-0", "127.0.0.1:4000", status, ""}; }

// Answers GetDeployment from `script` (the front, while more than one entry remains), counts
// reads, and has events only when the test fires them.
class ScriptedBackend : public KraneBackend {
 public:
  std::string_view name() const override { return "scripted"; }
  Result<std::vector<Instance>> CreateDeployment(const DeploymentSpec&) override {
    return Status::Unimplemented("not here");
  }
  Result<int> DeleteDeployment(const DeploymentRef&) override { return 0; }

  Result<std::vector<Instance>> GetDeployment(const DeploymentRef&) override {
    std::lock_guard lock(mu_);
    ++reads_;
    Result<std::vector<Instance>> now = script_.front();
    if (script_.size() > 1 && advance_on_read_) script_.pop_front();
    return now;
  }

  uint64_t WaitForInstanceChange(const DeploymentRef&, uint64_t seen,
                                 std::chrono::milliseconds timeout) override {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, timeout, [&] { return version_ != seen; });
    return version_;
  }

  // The instances change and the engine says so.
  void Fire(Result<std::vector<Instance>> instances) {
    std::lock_guard lock(mu_);
    script_ = {std::move(instances)};
    ++version_;
    cv_.notify_all();
  }
  void Script(std::deque<Result<std::vector<Instance>>> script, bool advance_on_read) {
    std::lock_guard lock(mu_);
    script_ = std::move(script);
    advance_on_read_ = advance_on_read;
  }
  int reads() {
    std::lock_guard lock(mu_);
    return reads_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Result<std::vector<Instance>>> script_;
  bool advance_on_read_ = false;
  uint64_t version_ = 1;
  int reads_ = 0;
};

// What a follow sent, waited for by the test thread.
class Received {
 public:
  bool Add(const std::vector<Instance>& instances) {
    std::lock_guard lock(mu_);
    messages_.push_back(instances);
    cv_.notify_all();
    return true;
  }
  // Waits (bounded, so a broken follow fails instead of hanging) for the n-th message.
  bool WaitFor(size_t n) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, 20s, [&] { return messages_.size() >= n; });
  }
  std::vector<std::vector<Instance>> messages() {
    std::lock_guard lock(mu_);
    return messages_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::vector<Instance>> messages_;
};

constexpr DeploymentRef kRef{"ns", "dep"};

FollowOptions HourLongSafetyPoll() {
  FollowOptions o;
  o.safety_poll = 1h;
  return o;
}

// FollowDeployment on a thread of its own with a 1 h safety poll, sending to `got`, until
// Stop().
class BackgroundFollow {
 public:
  BackgroundFollow(KraneBackend& backend, Received& got)
      : thread_([this, &backend, &got] {
          result_ = FollowDeployment(
              backend, kRef, HourLongSafetyPoll(), [&](const auto& i) { return got.Add(i); },
              [this] { return stop_.load(); });
        }) {}
  ~BackgroundFollow() {
    if (thread_.joinable()) (void)Stop();
  }
  // Ends the follow; how it ended.
  Status Stop() {
    stop_ = true;
    thread_.join();
    return result_;
  }

 private:
  std::atomic<bool> stop_{false};
  Status result_;
  std::thread thread_;
};

TEST(FollowDeploymentTest, AnEventWakesTheFollowAndOnlyChangesAreSent) {
  ScriptedBackend backend;
  backend.Script({std::vector<Instance>{Make(InstanceStatus::kRunning)}}, false);
  Received got;
  BackgroundFollow follow(backend, got);
  ASSERT_TRUE(got.WaitFor(1));
  // The same instances again (an event that changed nothing) are not sent twice.
  backend.Fire(std::vector<Instance>{Make(InstanceStatus::kRunning)});
  backend.Fire(std::vector<Instance>{Make(InstanceStatus::kFailed)});
  ASSERT_TRUE(got.WaitFor(2)) << "the event did not wake the follow (its safety poll is 1 h)";
  Status result = follow.Stop();
  EXPECT_TRUE(result.ok()) << result.ToString();
  auto messages = got.messages();
  ASSERT_EQ(messages.size(), 2u);
  EXPECT_EQ(messages[0][0].status, InstanceStatus::kRunning);
  EXPECT_EQ(messages[1][0].status, InstanceStatus::kFailed);
}

TEST(FollowDeploymentTest, APendingInstanceIsProbedAgainWithoutAnyEvent) {
  ScriptedBackend backend;
  // Three reads pending, then ready: no event comes, only reading again finds it.
  backend.Script({std::vector<Instance>{Make(InstanceStatus::kPending)},
                  std::vector<Instance>{Make(InstanceStatus::kPending)},
                  std::vector<Instance>{Make(InstanceStatus::kPending)},
                  std::vector<Instance>{Make(InstanceStatus::kRunning)}},
                 true);
  Received got;
  FollowOptions o = HourLongSafetyPoll();
  o.until_settled = true;
  Status result = FollowDeployment(
      backend, kRef, o, [&](const auto& i) { return got.Add(i); }, [] { return false; });
  EXPECT_TRUE(result.ok()) << result.ToString();
  auto messages = got.messages();
  ASSERT_EQ(messages.size(), 2u) << "pending once, then running; repeats are not sent";
  EXPECT_EQ(messages[0][0].status, InstanceStatus::kPending);
  EXPECT_EQ(messages[1][0].status, InstanceStatus::kRunning);
  EXPECT_EQ(backend.reads(), 4);
}

// An instance that died after it was ready is brought back by the engine's restart policy, and
// answering again is no engine event: a follow that goes on probes it again until it is back.
TEST(FollowDeploymentTest, AFailedInstanceIsProbedAgainUntilItIsBackWithoutAnyEvent) {
  ScriptedBackend backend;
  backend.Script({std::vector<Instance>{Make(InstanceStatus::kFailed)},
                  std::vector<Instance>{Make(InstanceStatus::kFailed)},
                  std::vector<Instance>{Make(InstanceStatus::kRunning)}},
                 true);
  Received got;
  BackgroundFollow follow(backend, got);
  ASSERT_TRUE(got.WaitFor(2)) << "the failed instance was not read again (no event, 1 h poll)";
  Status result = follow.Stop();
  EXPECT_TRUE(result.ok()) << result.ToString();
  auto messages = got.messages();
  ASSERT_EQ(messages.size(), 2u);
  EXPECT_EQ(messages[0][0].status, InstanceStatus::kFailed);
  EXPECT_EQ(messages[1][0].status, InstanceStatus::kRunning);
}

TEST(FollowDeploymentTest, UntilSettledEndsAtOnceWhenAnInstanceFailed) {
  ScriptedBackend backend;
  backend.Script({std::vector<Instance>{Make(InstanceStatus::kRunning),
                                        Make(InstanceStatus::kFailed)}},
                 false);
  Received got;
  FollowOptions o = HourLongSafetyPoll();
  o.until_settled = true;
  Status result = FollowDeployment(
      backend, kRef, o, [&](const auto& i) { return got.Add(i); }, [] { return false; });
  EXPECT_TRUE(result.ok()) << result.ToString();
  EXPECT_EQ(got.messages().size(), 1u);
  EXPECT_EQ(backend.reads(), 1);
}

TEST(FollowDeploymentTest, ADeploymentThatDisappearsEndsTheFollowWithNotFound) {
  ScriptedBackend backend;
  backend.Script({std::vector<Instance>{Make(InstanceStatus::kRunning)}}, false);
  Received got;
  Status result;
  std::thread follower([&] {
    result = FollowDeployment(
        backend, kRef, HourLongSafetyPoll(), [&](const auto& i) { return got.Add(i); },
        [] { return false; });
  });
  ASSERT_TRUE(got.WaitFor(1));
  backend.Fire(Status::NotFound("deployment \"dep\" has no instances"));
  follower.join();
  EXPECT_EQ(result.code(), Code::kNotFound) << result.ToString();
}

TEST(FollowDeploymentTest, AClientThatStopsReadingEndsTheFollow) {
  ScriptedBackend backend;
  backend.Script({std::vector<Instance>{Make(InstanceStatus::kPending)}}, false);
  int sent = 0;
  Status result = FollowDeployment(
      backend, kRef, HourLongSafetyPoll(), [&](const auto&) { return ++sent < 1; },
      [] { return false; });
  EXPECT_TRUE(result.ok());
  EXPECT_EQ(sent, 1);
}

TEST(FollowDeploymentTest, SettledMeansAllRunningOrOneFailed) {
  EXPECT_FALSE(Settled({}));
  EXPECT_TRUE(Settled({Make(InstanceStatus::kRunning), Make(InstanceStatus::kRunning)}));
  EXPECT_FALSE(Settled({Make(InstanceStatus::kRunning), Make(InstanceStatus::kPending)}));
  EXPECT_TRUE(Settled({Make(InstanceStatus::kPending), Make(InstanceStatus::kFailed)}));
  EXPECT_FALSE(Settled({Make(InstanceStatus::kTerminating)}));
}

}  // namespace
}  // namespace slipway::krane
