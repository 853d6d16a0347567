// Notices that a database's rows of some kind changed: a writer calls NotifyChange after it
// committed, and every subscriber to the same database (by Describe(): the same SQLite file or
// PostgreSQL database, whichever Database object opened it) and topic is called soon after.
//
// Within one process the subscribers are called at once, on the writer's thread (`slipway dev`
// runs ctrl and the gateway in one process on one partition database). With PostgreSQL the
// notice also crosses processes: NotifyChange sends `pg_notify`, and each process with
// subscribers to a PostgreSQL database keeps one connection that LISTENs for the topics they
// want and calls them from its own thread (so several ctrl processes and every gateway hear one
// another). A process does not hear its own notices twice.
//
// Notices are hints, never the data: a subscriber reads the database again. One can be lost
// (a dropped listening connection; SQLite across processes), so readers keep a periodic reload
// as a safety net; after the listening connection was lost and opened again, every subscriber
// of that database is called with an empty payload ("anything may have changed").
//
// Subscribers must stay cheap (wake a thread): they are called under a lock that also guards
// unsubscribing, so a subscription is never called once destroyed.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "db/database.h"

namespace slipway::db {

// Partition database: gateway routes or the instances they lead to changed.
inline constexpr std::string_view kRoutesChangedTopic = "gateway_routes";
// Main database: a deployment or a build changed (status, steps, log lines, image, hosts);
// the payload is its id.
inline constexpr std::string_view kDeploymentChangedTopic = "deployments";

// Announces a committed change; payload says what changed (an id), at most 7000 bytes. Never
// fails the caller: a notice that cannot be sent to other processes is logged.
void NotifyChange(Database& db, std::string_view topic, std::string_view payload = "");

class ChangeSubscription {
 public:
  ChangeSubscription(std::string key, uint64_t id) : key_(std::move(key)), id_(id) {}
  ~ChangeSubscription();
  ChangeSubscription(const ChangeSubscription&) = delete;
  ChangeSubscription& operator=(const ChangeSubscription&) = delete;

 private:
  std::string key_;
  uint64_t id_;
};

// Calls on_change with the payload of every later NotifyChange of db and topic, until
// destroyed. With PostgreSQL it returns once this process LISTENs for the topic (or, when the
// database cannot be reached, after a few seconds: the periodic reload covers that), so a change
// committed after it returns, by any process, reaches on_change.
std::unique_ptr<ChangeSubscription> SubscribeToChanges(
    const Database& db, std::string_view topic, std::function<void(std::string_view)> on_change);
// The same for subscribers that do not need the payload.
std::unique_ptr<ChangeSubscription> SubscribeToChanges(const Database& db, std::string_view topic,
                                                       std::function<void()> on_change);

}  // namespace slipway::db
