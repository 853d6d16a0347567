#include "krane/docker/container_events.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <ctime>
#include <optional>
#include <nlohmann/json.hpp>

#include "net/http.h"

namespace slipway::krane::docker {
namespace {

using Json = nlohmann::json;

// Beyond this many deployments remembered, the map starts over (every one reads as changed
// once): removed deployments must not make it grow for the life of the process.
constexpr size_t kMaxTracked = 10'000;
constexpr std::chrono::milliseconds kFirstBackoff{100};
constexpr std::chrono::milliseconds kMaxBackoff{5000};

}  // namespace

ContainerEvents::ContainerEvents(const EngineClient& engine, std::string label_filter,
                                 std::string deployment_label)
    : engine_(engine),
      label_filter_(std::move(label_filter)),
      deployment_label_(std::move(deployment_label)) {
  thread_ = std::thread([this] { Run(); });
}

ContainerEvents::~ContainerEvents() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  changed_.notify_all();
  thread_.join();
}

uint64_t ContainerEvents::VersionOf(const std::string& deployment_id) const {
  auto it = changed_at_.find(deployment_id);
  return it == changed_at_.end() ? reset_at_ : std::max(it->second, reset_at_);
}

uint64_t ContainerEvents::WaitForChange(const std::string& deployment_id, uint64_t seen,
                                        std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  changed_.wait_for(lock, timeout, [&] { return stop_ || VersionOf(deployment_id) > seen; });
  return VersionOf(deployment_id);
}

ContainerEventCounters ContainerEvents::counters() const {
  std::lock_guard lock(mu_);
  return counters_;
}

// An HTTP Date ("Wed, 02 Dec 2026 03:24:01 GMT") in nanoseconds since the epoch; 0 if absent
// or malformed.
static int64_t NanosOfHttpDate(std::optional<std::string_view> date) {
  if (!date) return 0;
  std::tm tm{};
  const std::string text(*date);
  const char* end = ::strptime(text.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (end == nullptr || *end != '\0') return 0;
  return static_cast<int64_t>(::timegm(&tm)) * 1'000'000'000;
}

void ContainerEvents::Opened(const net::Headers& headers) {
  std::lock_guard lock(mu_);
  if (int64_t date = NanosOfHttpDate(headers.Get("Date")); date > 0) {
    resume_from_nanos_ = std::max(resume_from_nanos_, date - 1'000'000'000);
  }
  ++counters_.opens;
  reset_at_ = ++version_;
  changed_.notify_all();
}

void ContainerEvents::Apply(std::string_view line) {
  Json event = Json::parse(line, nullptr, false);
  if (!event.is_object() || event.value("Type", "") != "container") return;
  const std::string action = event.value("Action", "");
  // Exec sessions (a health check's) and attaches change nothing about the instance.
  if (action.rfind("exec_", 0) == 0 || action == "attach" || action == "resize" ||
      action == "top" || action == "archive-path") {
    return;
  }
  const Json actor = event.value("Actor", Json::object());
  const Json attributes = actor.is_object() ? actor.value("Attributes", Json::object()) : Json();
  if (!attributes.is_object()) return;
  auto it = attributes.find(deployment_label_);
  if (it == attributes.end() || !it->is_string()) return;
  const int64_t time_nano = event.value("timeNano", int64_t{0});
  std::lock_guard lock(mu_);
  resume_from_nanos_ = std::max(resume_from_nanos_, time_nano);
  if (changed_at_.size() >= kMaxTracked) {
    changed_at_.clear();
    reset_at_ = version_ + 1;
  }
  changed_at_[it->get<std::string>()] = ++version_;
  ++counters_.events;
  changed_.notify_all();
}

void ContainerEvents::Run() {
  const Json filters = {{"type", Json::array({"container"})},
                        {"label", Json::array({label_filter_})}};
  const std::string filter_query = "/events?filters=" + net::UriEncode(filters.dump());
  auto stopping = [this] {
    std::lock_guard lock(mu_);
    return stop_;
  };
  std::chrono::milliseconds backoff = kFirstBackoff;
  while (!stopping()) {
    std::string path = filter_query;
    {
      std::lock_guard lock(mu_);
      if (resume_from_nanos_ > 0) {
        path += fmt::format("&since={}.{:09}", resume_from_nanos_ / 1'000'000'000,
                            resume_from_nanos_ % 1'000'000'000);
      }
    }
    Status ended = engine_.StreamLines(
        path,
        [&](const net::Headers& headers) {
          backoff = kFirstBackoff;
          Opened(headers);
        },
        [&](std::string_view line) {
          Apply(line);
          return !stopping();
        },
        stopping);
    if (stopping()) return;
    const std::string why =
        ended.ok() ? std::string("dockerd ended the event stream") : ended.message();
    {
      std::lock_guard lock(mu_);
      counters_.last_error = why;
    }
    spdlog::warn("krane: {}; opening it again in {} ms (instances are still polled meanwhile)",
                 why, backoff.count());
    std::unique_lock lock(mu_);
    changed_.wait_for(lock, backoff, [this] { return stop_; });
    backoff = std::min(backoff * 2, kMaxBackoff);
  }
}

}  // namespace slipway::krane::docker
