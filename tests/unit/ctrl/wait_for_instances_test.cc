// The deploy workflow's wait step (DeploymentOps::WaitForInstances) against a scripted krane
// over a real loopback Connect server, on a ManualClock whose GetDeployment poll interval is an
// hour: so whatever ends the wait before the test moves the clock was krane's WatchDeployment
// stream. Shown: ready the moment the stream says so (0 ms of clock time after the instance
// became ready, one poll in all); a FAILED instance from the stream fails at once with its
// reason; a lost event is caught by the poll once its interval passed; a krane without the
// stream (unimplemented) is polled; a stream that breaks is opened again.
#include <gtest/gtest.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>

#include "ctrl/deployment_ops.h"
#include "ctrl/partition_store.h"
#include "db/migrations.h"
#include "net/connect.h"
#include "net/http_server.h"
#include "slipway/krane/v1/deployment.pb.h"
#include "support/test_support.h"
#include "workflow/engine.h"

namespace slipway::ctrl {
namespace {

namespace kv1 = slipway::krane::v1;
using namespace std::chrono_literals;

constexpr const char* kKraneService = "slipway.krane.v1.DeploymentService";
constexpr auto kPollInterval = 1h;
constexpr auto kDeadline = 24h;  // far beyond the poll interval: no test here reaches it

kv1::Instance Instance(kv1::InstanceStatus status, std::string reason = "") {
  kv1::Instance in;
  in.set_id("dep_wait-0");
  in.set_address("127.0.0.1:4100");
  in.set_status(status);
  in.set_reason(std::move(reason));
  return in;
}

// A krane whose answers the test decides: GetDeployment answers `polled`; each
// WatchDeployment stream sends what the test pushes, and ends when the test says so (with
// that status). Without the stream (older krane) WatchDeployment is not registered at all.
class ScriptedKrane {
 public:
  explicit ScriptedKrane(bool with_stream) {
    router_.Unary<kv1::GetDeploymentRequest, kv1::GetDeploymentResponse>(
        net::ConnectProcedure(kKraneService, "GetDeployment"),
        [this](net::CallContext&, const kv1::GetDeploymentRequest&,
               kv1::GetDeploymentResponse* resp) {
          std::lock_guard lock(mu_);
          ++polls_;
          cv_.notify_all();
          *resp->add_instances() = polled_;
          return Status::Ok();
        });
    if (with_stream) {
      router_.ServerStreaming<kv1::WatchDeploymentRequest, kv1::WatchDeploymentResponse>(
          net::ConnectProcedure(kKraneService, "WatchDeployment"),
          [this](net::CallContext&, const kv1::WatchDeploymentRequest& req,
                 net::StreamWriter<kv1::WatchDeploymentResponse>& out) { return Serve(req, out); });
    }
    auto server = net::HttpServer::Start({}, router_.AsHandler());
    EXPECT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(*server);
    net::ConnectClient::Options o;
    o.base_url = "http://" + server_->address();
    client_ = std::make_unique<net::ConnectClient>(o);
  }
  ~ScriptedKrane() {
    {
      std::lock_guard lock(mu_);
      closing_ = true;
    }
    cv_.notify_all();
    server_->Shutdown(2s);
  }

  net::ConnectClient& client() { return *client_; }

  void SetPolled(const kv1::Instance& in) {
    std::lock_guard lock(mu_);
    polled_ = in;
  }
  // The next message of the open (or next) stream.
  void Push(const kv1::Instance& in) {
    std::lock_guard lock(mu_);
    kv1::WatchDeploymentResponse m;
    *m.add_instances() = in;
    queue_.push_back(Item{m, std::nullopt});
    cv_.notify_all();
  }
  // Ends the open stream with status once what was pushed before is sent.
  void End(Status status) {
    std::lock_guard lock(mu_);
    queue_.push_back(Item{std::nullopt, std::move(status)});
    cv_.notify_all();
  }
  int polls() {
    std::lock_guard lock(mu_);
    return polls_;
  }
  int streams() {
    std::lock_guard lock(mu_);
    return streams_;
  }
  bool WaitForPolls(int n) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, 20s, [&] { return polls_ >= n; });
  }
  bool WaitForStreams(int n) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, 20s, [&] { return streams_ >= n; });
  }
  bool until_settled() {
    std::lock_guard lock(mu_);
    return until_settled_;
  }

 private:
  struct Item {
    std::optional<kv1::WatchDeploymentResponse> message;
    std::optional<Status> end;
  };

  Status Serve(const kv1::WatchDeploymentRequest& req,
               net::StreamWriter<kv1::WatchDeploymentResponse>& out) {
    std::unique_lock lock(mu_);
    ++streams_;
    until_settled_ = req.until_settled();
    cv_.notify_all();
    for (;;) {
      cv_.wait_for(lock, 100ms, [&] { return closing_ || !queue_.empty(); });
      if (closing_ || out.Cancelled()) return Status::Canceled("the test is over");
      if (queue_.empty()) continue;
      Item item = queue_.front();
      queue_.pop_front();
      if (item.end) return *item.end;
      lock.unlock();
      Status sent = out.Send(*item.message);
      lock.lock();
      if (!sent.ok()) return sent;
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  kv1::Instance polled_ = Instance(kv1::INSTANCE_STATUS_PENDING, "starting");
  std::deque<Item> queue_;
  int polls_ = 0, streams_ = 0;
  bool until_settled_ = false;
  bool closing_ = false;
  net::ConnectRouter router_;
  std::unique_ptr<net::HttpServer> server_;
  std::unique_ptr<net::ConnectClient> client_;
};

class WaitForInstancesTest : public ::testing::Test {
 protected:
  void Start(bool with_stream) {
    krane_ = std::make_unique<ScriptedKrane>(with_stream);
    auto main = db::OpenMain("sqlite://" + (dir_.path() / "main.db").string());
    ASSERT_TRUE(main.ok()) << main.status().ToString();
    main_ = std::move(*main);
    auto partition = db::OpenPartition("sqlite://" + (dir_.path() / "partition.db").string());
    ASSERT_TRUE(partition.ok()) << partition.status().ToString();
    partition_db_ = std::move(*partition);
    partition_ = std::make_unique<PartitionStore>(*partition_db_, clock_);

    deps_.krane = &krane_->client();
    deps_.partition = partition_.get();
    deps_.wait_interval = kPollInterval;
    record_.id = "dep_wait";
    record_.workspace_id = "ws";
    record_.replicas = 1;

    workflow::EngineOptions eo;
    eo.clock = &clock_;
    eo.poll_interval = 5ms;  // how often a sleep looks at the manual clock
    // Moving the clock by the poll interval must not make the run's lease look expired (the
    // engine would claim it a second time).
    eo.lease_duration = 48h;
    engine_ = std::make_unique<workflow::WorkflowEngine>(*main_, eo);
    engine_->Register("wait", [this](workflow::RunContext& ctx) -> Status {
      auto deadline = ctx.Deadline("wait", kDeadline);
      if (!deadline.ok()) return deadline.status();
      auto out = ctx.Step(
          "wait", [&] { return DeploymentOps(deps_, ctx, record_).WaitForInstances(*deadline); },
          workflow::RetryPolicy{1});
      if (!out.ok()) return out.status();
      ctx.SetOutput(*out);
      return Status::Ok();
    });
    ASSERT_TRUE(engine_->StartWorkers().ok());
    auto run = engine_->Start("wait", "project", "dep_wait");
    ASSERT_TRUE(run.ok()) << run.status().ToString();
    run_id_ = *run;
  }

  void TearDown() override {
    if (engine_) engine_->Stop();
    engine_.reset();
    krane_.reset();
  }

  // Waits (in real time, bounded: a broken step fails the test instead of hanging it) for the
  // run to finish. The manual clock does not move meanwhile.
  workflow::RunRecord Finished() {
    const auto give_up = std::chrono::steady_clock::now() + 20s;
    for (;;) {
      auto run = engine_->GetRun(run_id_);
      EXPECT_TRUE(run.ok()) << run.status().ToString();
      if (run.ok() && (run->status == workflow::RunStatus::kSucceeded ||
                       run->status == workflow::RunStatus::kFailed)) {
        return *run;
      }
      if (std::chrono::steady_clock::now() > give_up) {
        ADD_FAILURE() << "the wait step did not finish";
        return run.ok() ? *run : workflow::RunRecord{};
      }
      std::this_thread::sleep_for(5ms);
    }
  }

  bool StillWaiting() {
    auto run = engine_->GetRun(run_id_);
    return run.ok() && run->status != workflow::RunStatus::kSucceeded &&
           run->status != workflow::RunStatus::kFailed;
  }

  testing::TempDir dir_;
  ManualClock clock_{std::chrono::system_clock::time_point(std::chrono::hours(500'000))};
  std::unique_ptr<ScriptedKrane> krane_;
  std::unique_ptr<db::Database> main_, partition_db_;
  std::unique_ptr<PartitionStore> partition_;
  WorkflowDeps deps_;
  DeploymentRecord record_;
  std::unique_ptr<workflow::WorkflowEngine> engine_;
  std::string run_id_;
};

TEST_F(WaitForInstancesTest, ReadyTheMomentTheStreamSaysSoThoughThePollIsAnHourAway) {
  Start(/*with_stream=*/true);
  ASSERT_TRUE(krane_->WaitForStreams(1));
  EXPECT_TRUE(krane_->until_settled()) << "the wait asks krane to end the stream once settled";
  krane_->Push(Instance(kv1::INSTANCE_STATUS_PENDING, "running but not ready"));
  std::this_thread::sleep_for(50ms);
  EXPECT_TRUE(StillWaiting());
  // The container becomes ready: krane's stream says so.
  const auto ready_at = clock_.Now();
  krane_->Push(Instance(kv1::INSTANCE_STATUS_RUNNING));
  workflow::RunRecord run = Finished();
  ASSERT_EQ(run.status, workflow::RunStatus::kSucceeded) << run.error.ToString();
  EXPECT_NE(run.output.find("\"RUNNING\""), std::string::npos) << run.output;
  ASSERT_TRUE(run.finished_at.has_value());
  // On the injected clock: no time passed between ready and done, far under 100 ms, while
  // the next GetDeployment poll was an hour away.
  EXPECT_LE(*run.finished_at - ready_at, 100ms);
  EXPECT_LE(krane_->polls(), 1) << "no poll but (at most) the first look";
  auto rows = partition_->ListInstances("dep_wait");
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ((*rows)[0].status, "RUNNING");
}

TEST_F(WaitForInstancesTest, AFailedInstanceFromTheStreamFailsAtOnceWithItsReason) {
  Start(true);
  ASSERT_TRUE(krane_->WaitForStreams(1));
  krane_->Push(Instance(kv1::INSTANCE_STATUS_FAILED, "exited with exit code 3; last log lines:\nboom"));
  workflow::RunRecord run = Finished();
  ASSERT_EQ(run.status, workflow::RunStatus::kFailed);
  EXPECT_NE(run.error.message().find("exit code 3"), std::string::npos) << run.error.ToString();
  EXPECT_LE(krane_->polls(), 1);
}

TEST_F(WaitForInstancesTest, ALostEventIsCaughtByThePollOnceItsIntervalPassed) {
  Start(true);
  ASSERT_TRUE(krane_->WaitForStreams(1));
  ASSERT_TRUE(krane_->WaitForPolls(1));  // the first look found it PENDING
  krane_->Push(Instance(kv1::INSTANCE_STATUS_PENDING));
  // Ready, but the stream never says so (its event was lost); GetDeployment knows.
  krane_->SetPolled(Instance(kv1::INSTANCE_STATUS_RUNNING));
  std::this_thread::sleep_for(100ms);
  EXPECT_TRUE(StillWaiting()) << "nothing may end the wait before the poll interval passed";
  clock_.Advance(kPollInterval);
  workflow::RunRecord run = Finished();
  ASSERT_EQ(run.status, workflow::RunStatus::kSucceeded) << run.error.ToString();
  EXPECT_EQ(krane_->polls(), 2);
}

TEST_F(WaitForInstancesTest, AKraneWithoutTheStreamIsPolled) {
  Start(/*with_stream=*/false);
  ASSERT_TRUE(krane_->WaitForPolls(1));  // the first look, a poll, found it PENDING
  krane_->SetPolled(Instance(kv1::INSTANCE_STATUS_RUNNING));
  std::this_thread::sleep_for(50ms);
  EXPECT_TRUE(StillWaiting());
  clock_.Advance(kPollInterval);
  workflow::RunRecord run = Finished();
  ASSERT_EQ(run.status, workflow::RunStatus::kSucceeded) << run.error.ToString();
  EXPECT_EQ(krane_->polls(), 2);
}

TEST_F(WaitForInstancesTest, AStreamThatBreaksIsOpenedAgain) {
  Start(true);
  ASSERT_TRUE(krane_->WaitForStreams(1));
  krane_->Push(Instance(kv1::INSTANCE_STATUS_PENDING));
  krane_->End(Status::Unavailable("krane is restarting"));
  ASSERT_TRUE(krane_->WaitForStreams(2)) << "the broken stream was not opened again";
  krane_->Push(Instance(kv1::INSTANCE_STATUS_RUNNING));
  workflow::RunRecord run = Finished();
  ASSERT_EQ(run.status, workflow::RunStatus::kSucceeded) << run.error.ToString();
  EXPECT_LE(krane_->polls(), 1);
}

}  // namespace
}  // namespace slipway::ctrl
