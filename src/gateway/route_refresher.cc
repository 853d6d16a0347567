#include "gateway/route_refresher.h"

#include <spdlog/spdlog.h>

#include "base/crypto.h"

namespace slipway::gateway {
namespace {

std::atomic<uint64_t> next_serial{1};

// A loop thread's reference to the table it routes with (ForThisThread).
struct ThreadTable {
  uint64_t owner = 0;  // RouteRefresher::serial_; 0: none yet
  uint64_t generation = 0;
  std::shared_ptr<const RoutingTable> table;
};
thread_local ThreadTable thread_table;

}  // namespace

RouteRefresher::RouteRefresher(db::Database& partition, std::chrono::milliseconds interval)
    : partition_(partition),
      interval_(interval),
      id_("gw_" + RandomHex(8)),
      serial_(next_serial.fetch_add(1)),
      table_(std::make_shared<const RoutingTable>()) {}

const RoutingTable& RouteRefresher::ForThisThread() const {
  ThreadTable& mine = thread_table;
  // Read before the table: a swap after this read is seen as a new generation next time.
  const uint64_t generation = generation_.load(std::memory_order_acquire);
  if (mine.owner != serial_ || mine.generation != generation || mine.table == nullptr) {
    mine.table = table_.load();
    mine.owner = serial_;
    mine.generation = generation;
  }
  return *mine.table;
}

namespace {

int64_t WallClockMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

Result<std::unique_ptr<RouteRefresher>> RouteRefresher::Start(db::Database& partition,
                                                              std::chrono::milliseconds interval) {
  if (interval.count() <= 0) {
    return Status::InvalidArgument(
        "the gateway's route refresh interval must be above zero; use for example 250ms");
  }
  std::unique_ptr<RouteRefresher> refresher(new RouteRefresher(partition, interval));
  // Subscribed before the first load, so no change falls between the two. A change committed by
  // this process (slipway dev's ctrl), or with PostgreSQL by any process (LISTEN/NOTIFY), is
  // loaded at once; the interval stays as the safety net against a lost notice.
  refresher->changes_ = db::SubscribeToChanges(partition, db::kRoutesChangedTopic, [r = refresher.get()] {
    std::lock_guard lock(r->mu_);
    r->changed_ = true;
    r->cv_.notify_all();
  });
  Status first = refresher->Reload();
  if (!first.ok()) {
    return first.WithContext("reading the gateway routes from " + partition.Describe() +
                             " (check the partition database URL and that it is reachable)");
  }
  refresher->thread_ = std::thread([r = refresher.get()] { r->Run(); });
  return refresher;
}

RouteRefresher::~RouteRefresher() { Stop(); }

void RouteRefresher::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (!thread_.joinable()) return;
  thread_.join();
  Status forgot = partition_.Exec("DELETE FROM gateway_loads WHERE gateway_id = $1", {id_}).status();
  if (!forgot.ok()) spdlog::warn("gateway {}: cannot remove its load record: {}", id_, forgot.message());
}

Status RouteRefresher::Reload() {
  // Taken before reading: every route committed before this instant is in what is read.
  const int64_t started_ms = WallClockMs();
  SLIPWAY_ASSIGN_OR_RETURN(auto entries, LoadRoutingEntries(partition_));
  std::shared_ptr<const RoutingTable> old = table_.load();
  auto fresh = std::make_shared<const RoutingTable>(RoutingTable::Build(entries, old.get()));
  if (loads_ == 0 || !fresh->SameRoutes(*old)) {
    spdlog::info("gateway routes: {} host(s) to {} deployment(s) with {} running instance(s)",
                 fresh->host_count(), fresh->deployment_count(), fresh->instance_count());
  }
  table_.store(std::move(fresh));
  generation_.fetch_add(1, std::memory_order_release);
  ++loads_;
  // Only after the swap: the record promises the table being served holds these routes.
  return partition_
      .Exec("INSERT INTO gateway_loads (gateway_id, loaded_at) VALUES ($1, $2) "
            "ON CONFLICT (gateway_id) DO UPDATE SET loaded_at = excluded.loaded_at",
            {id_, started_ms})
      .status()
      .WithContext("recording the gateway's route load");
}

void RouteRefresher::Run() {
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait_for(lock, interval_, [&] { return stopping_ || changed_; });
    if (stopping_) return;
    changed_ = false;
    lock.unlock();
    Status reloaded = Reload();
    if (!reloaded.ok() && !failing_) {
      spdlog::warn(
          "gateway: reloading routes from {} failed: {}; still routing with the last good table "
          "and retrying every {} ms",
          partition_.Describe(), reloaded.message(), interval_.count());
    } else if (reloaded.ok() && failing_) {
      spdlog::info("gateway: routes reload from {} again", partition_.Describe());
    }
    failing_ = !reloaded.ok();
    lock.lock();
  }
}

}  // namespace slipway::gateway
