#include "krane/kubernetes/resource_watch.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "net/http.h"

namespace slipway::krane::kubernetes {
namespace {

using Json = nlohmann::json;

// A watch asks the server to end it after this long; the client resumes at once. Bookmarks
// keep its resourceVersion fresh meanwhile.
constexpr int kWatchSeconds = 240;

int64_t ResourceVersionNumber(const Json& object) {
  try {
    return std::stoll(object["metadata"].value("resourceVersion", "0"));
  } catch (...) {
    return 0;
  }
}

}  // namespace

ResourceWatch::ResourceWatch(KubeApi& api, std::string group, std::string resource, std::string ns,
                             std::string selector)
    : api_(api),
      group_(std::move(group)),
      resource_(std::move(resource)),
      ns_(std::move(ns)),
      selector_(std::move(selector)) {
  thread_ = std::thread([this] { Run(); });
}

ResourceWatch::~ResourceWatch() {
  {
    std::lock_guard lock(stop_mu_);
    stop_ = true;
  }
  stop_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::string ResourceWatch::KeyOf(const Json& object) {
  if (!object.is_object() || !object.contains("metadata")) return "";
  return object["metadata"].value("name", "");
}

std::vector<Json> ResourceWatch::WithLabel(const std::string& key, const std::string& value) const {
  std::lock_guard lock(mu_);
  std::vector<Json> out;
  for (const auto& [name, object] : objects_) {
    const Json labels = object["metadata"].value("labels", Json::object());
    auto it = labels.find(key);
    if (it != labels.end() && it->is_string() && it->get<std::string>() == value) {
      out.push_back(object);
    }
  }
  return out;
}

bool ResourceWatch::synced() const {
  std::lock_guard lock(mu_);
  return counters_.synced;
}

bool ResourceWatch::WaitSynced(std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mu_);
  return changed_.wait_for(lock, timeout, [&] { return counters_.synced; });
}

uint64_t ResourceWatch::WaitForChange(uint64_t seen, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mu_);
  changed_.wait_for(lock, timeout, [&] { return version_ != seen; });
  return version_;
}

uint64_t ResourceWatch::version() const {
  std::lock_guard lock(mu_);
  return version_;
}

void ResourceWatch::Observe(const Json& object) {
  const std::string key = KeyOf(object);
  if (key.empty()) return;
  std::lock_guard lock(mu_);
  auto it = objects_.find(key);
  // Never replace a newer copy the watch already delivered with an older one.
  if (it != objects_.end() && ResourceVersionNumber(it->second) >= ResourceVersionNumber(object)) {
    return;
  }
  objects_[key] = object;
  ++version_;
  changed_.notify_all();
}

WatchCounters ResourceWatch::counters() const {
  std::lock_guard lock(mu_);
  return counters_;
}

Status ResourceWatch::List() {
  const std::string path =
      CollectionPath(group_, resource_, ns_) + "?labelSelector=" + net::UriEncode(selector_);
  SLIPWAY_ASSIGN_OR_RETURN(KubeReply reply, api_.Call("GET", path));
  if (reply.status != 200 || !reply.body.is_object()) {
    return api_.ErrorFor(reply, {"list", group_, resource_, ns_, ""});
  }
  std::map<std::string, Json> fresh;
  for (const Json& item : reply.body.value("items", Json::array())) {
    std::string key = KeyOf(item);
    if (!key.empty()) fresh[key] = item;
  }
  std::lock_guard lock(mu_);
  objects_ = std::move(fresh);
  resource_version_ = reply.body["metadata"].value("resourceVersion", "");
  counters_.synced = true;
  ++counters_.lists;
  ++version_;
  changed_.notify_all();
  return Status::Ok();
}

bool ResourceWatch::Apply(std::string_view line, bool* gone) {
  Json event = Json::parse(line, nullptr, false);
  if (!event.is_object()) return false;
  const std::string type = event.value("type", "");
  const Json& object = event["object"];
  if (type == "ERROR") {
    if (object.is_object() && object.value("code", 0) == 410) *gone = true;
    std::lock_guard lock(mu_);
    counters_.last_error = object.is_object() ? object.value("message", "watch error") : "";
    return false;
  }
  std::lock_guard lock(mu_);
  if (object.is_object() && object.contains("metadata")) {
    std::string rv = object["metadata"].value("resourceVersion", "");
    if (!rv.empty()) resource_version_ = rv;
  }
  if (type == "BOOKMARK") {
    ++counters_.bookmarks;
    return true;
  }
  const std::string key = KeyOf(object);
  if (key.empty()) return true;
  if (type == "DELETED") {
    objects_.erase(key);
  } else if (type == "ADDED" || type == "MODIFIED") {
    objects_[key] = object;
  }
  ++counters_.events;
  ++version_;
  changed_.notify_all();
  return true;
}

void ResourceWatch::Run() {
  auto sleep_for = [this](std::chrono::milliseconds d) {
    std::unique_lock lock(stop_mu_);
    stop_cv_.wait_for(lock, d, [this] { return stop_.load(); });
  };
  std::chrono::milliseconds backoff{200};
  bool need_list = true;
  while (!stop_) {
    if (need_list) {
      Status listed = List();
      if (!listed.ok()) {
        {
          std::lock_guard lock(mu_);
          counters_.last_error = listed.message();
        }
        spdlog::warn("krane: listing {} in namespace {} failed: {}", resource_, ns_,
                     listed.message());
        sleep_for(backoff);
        backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
        continue;
      }
      need_list = false;
    }
    std::string rv;
    {
      std::lock_guard lock(mu_);
      rv = resource_version_;
    }
    const std::string path =
        CollectionPath(group_, resource_, ns_) + "?watch=1&allowWatchBookmarks=true" +
        "&labelSelector=" + net::UriEncode(selector_) + "&resourceVersion=" + rv +
        fmt::format("&timeoutSeconds={}", kWatchSeconds);
    bool gone = false;
    int status = 0;
    std::string error_body;
    bool got_line = false;
    // Lines are applied as they come; stop_ ends the stream within about a second.
    Status streamed = api_.Stream(
        path,
        [&](std::string_view line) {
          got_line = true;
          if (stop_) return false;
          return Apply(line, &gone);
        },
        &status, &error_body, [this] { return stop_.load(); },
        std::chrono::seconds(kWatchSeconds + 10));
    if (stop_) break;
    if (status == 410) gone = true;
    if (gone) {
      std::lock_guard lock(mu_);
      ++counters_.gone;
    }
    if (gone || (status != 0 && status != 200)) {
      if (!gone && status != 0) {
        Status error = api_.ErrorFor(status, error_body, {"watch", group_, resource_, ns_, ""});
        std::lock_guard lock(mu_);
        counters_.last_error = error.message();
      }
      need_list = true;
      if (!gone) {
        sleep_for(backoff);
        backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
      }
      continue;
    }
    if (!streamed.ok()) {
      std::lock_guard lock(mu_);
      counters_.last_error = streamed.message();
    }
    {
      std::lock_guard lock(mu_);
      ++counters_.resumes;
    }
    if (!streamed.ok() || !got_line) {
      sleep_for(backoff);
      backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
    } else {
      backoff = std::chrono::milliseconds(200);
    }
  }
}

}  // namespace slipway::krane::kubernetes
