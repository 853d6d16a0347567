// Reads one krane WatchDeployment stream on a thread of its own and keeps every message, so a
// test can wait (bounded) for the instances to reach a state, for the stream to end, and look
// at what was sent in between. Shared by the docker and kubernetes watch tests.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "base/status.h"
#include "net/connect.h"
#include "slipway/krane/v1/deployment.pb.h"

namespace slipway::testing {

class KraneWatchReader {
 public:
  // bound: how long the call may run and how long each wait waits.
  KraneWatchReader(const net::ConnectClient& client, krane::v1::WatchDeploymentRequest req,
                   std::chrono::seconds bound)
      : bound_(bound) {
    thread_ = std::thread([this, &client, req] {
      net::StreamCallOptions call;
      call.timeout = bound_ + bound_;
      call.cancelled = [this] { return stop_.load(); };
      Status ended = client.Stream<krane::v1::WatchDeploymentResponse>(
          net::ConnectProcedure("slipway.krane.v1.DeploymentService", "WatchDeployment"), req,
          [this](const krane::v1::WatchDeploymentResponse& m) {
            std::lock_guard lock(mu_);
            messages_.push_back(m);
            cv_.notify_all();
            return true;
          },
          call);
      std::lock_guard lock(mu_);
      ended_ = ended;
      cv_.notify_all();
    });
  }
  ~KraneWatchReader() {
    stop_ = true;
    thread_.join();
  }
  KraneWatchReader(const KraneWatchReader&) = delete;
  KraneWatchReader& operator=(const KraneWatchReader&) = delete;

  // Waits for a message after the first `after` whose instances (at least one) all satisfy
  // pred; returns its index, or nullopt when none came within the bound.
  std::optional<size_t> WaitFor(const std::function<bool(const krane::v1::Instance&)>& pred,
                                size_t after = 0) {
    std::unique_lock lock(mu_);
    std::optional<size_t> found;
    cv_.wait_for(lock, bound_, [&] {
      for (size_t i = after; i < messages_.size(); ++i) {
        bool all = messages_[i].instances_size() > 0;
        for (const auto& in : messages_[i].instances()) all = all && pred(in);
        if (all) {
          found = i;
          return true;
        }
      }
      return false;
    });
    return found;
  }
  // How the call ended, or nullopt when it had not within the bound.
  std::optional<Status> WaitEnded() {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, bound_, [&] { return ended_.has_value(); });
    return ended_;
  }
  std::vector<krane::v1::WatchDeploymentResponse> messages() {
    std::lock_guard lock(mu_);
    return messages_;
  }

 private:
  const std::chrono::seconds bound_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<krane::v1::WatchDeploymentResponse> messages_;
  std::optional<Status> ended_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace slipway::testing
