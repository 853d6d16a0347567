#include "db/change_notices.h"

#include <spdlog/spdlog.h>

#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "base/crypto.h"

namespace slipway::db {
namespace {

using Callback = std::function<void(std::string_view)>;

// The PostgreSQL channel of a topic: one per topic, so a process receives only what it listens
// for.
std::string Channel(std::string_view topic) { return "slipway_" + std::string(topic); }
constexpr size_t kChannelPrefix = std::string_view("slipway_").size();

// Marks this process's own notices, which it has already delivered in process.
const std::string& Origin() {
  static const std::string* origin = new std::string(RandomHex(8));
  return *origin;
}

// The state of one database's listening connection in this process.
struct Listener {
  NoticeConnector connect;
  std::string database;             // Describe()
  std::set<std::string> listening;  // topics LISTENed on the current connection
  bool unreachable = false;         // the last connection attempt failed
};

struct Registry {
  std::mutex mu;
  std::condition_variable listening_changed;
  uint64_t next_id = 1;
  // "<database>\n<topic>" -> subscribers
  std::map<std::string, std::map<uint64_t, Callback>> subscribers;
  std::map<std::string, std::shared_ptr<Listener>> listeners;  // by database
};

Registry& Subscribers() {
  static Registry* registry = new Registry();  // never destroyed: used from exiting threads
  return *registry;
}

std::string Key(std::string_view database, std::string_view topic) {
  return std::string(database) + "\n" + std::string(topic);
}

// Calls the subscribers of one key; r.mu held.
void DispatchLocked(Registry& r, const std::string& key, std::string_view payload) {
  auto it = r.subscribers.find(key);
  if (it == r.subscribers.end()) return;
  for (const auto& [id, fn] : it->second) fn(payload);
}

// The topics with subscribers on a database; r.mu held.
std::set<std::string> TopicsLocked(Registry& r, const std::string& database) {
  std::set<std::string> topics;
  const std::string prefix = database + "\n";
  for (auto it = r.subscribers.lower_bound(prefix);
       it != r.subscribers.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it) {
    topics.insert(it->first.substr(prefix.size()));
  }
  return topics;
}

// The listening thread of one database: LISTENs for every topic with subscribers, hands the
// notices of other processes to them, opens the connection again when it is lost, and ends once
// the database has no subscribers left in this process.
void RunListener(std::shared_ptr<Listener> l) {
  Registry& r = Subscribers();
  std::unique_ptr<NoticeConnection> conn;
  bool missed = false;  // a connection was lost: notices may have gone by unheard
  auto backoff = std::chrono::milliseconds(100);
  for (;;) {
    std::set<std::string> topics;
    {
      std::unique_lock lock(r.mu);
      topics = TopicsLocked(r, l->database);
      if (topics.empty() && conn) {
        // Closed without the lock held; a subscriber that came meanwhile is seen below.
        lock.unlock();
        conn.reset();
        lock.lock();
        topics = TopicsLocked(r, l->database);
      }
      if (topics.empty()) {
        // The last unsubscriber waits for this (bounded), so that once it returns this thread
        // touches nothing of the database's any more, nor logs, nor frees OpenSSL's state of
        // the thread (libpq's and RandomHex's) while the process exits (a sanitizer run saw
        // that as a leak).
        ReleaseThreadCryptoState();
        r.listeners.erase(l->database);
        r.listening_changed.notify_all();
        return;
      }
    }
    if (!conn) {
      auto opened = l->connect();
      if (!opened.ok()) {
        {
          std::lock_guard lock(r.mu);
          if (!l->unreachable) {
            spdlog::warn(
                "change notices from {}: {}; relying on periodic reloads until it "
                "answers again",
                l->database, opened.status().message());
          }
          l->unreachable = true;
          l->listening.clear();
        }
        r.listening_changed.notify_all();
        {
          // Ends early when the last subscriber leaves.
          std::unique_lock lock(r.mu);
          r.listening_changed.wait_for(lock, backoff,
                                       [&] { return TopicsLocked(r, l->database).empty(); });
        }
        backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
        continue;
      }
      conn = std::move(opened).value();
      backoff = std::chrono::milliseconds(100);
      std::lock_guard lock(r.mu);
      if (l->unreachable) spdlog::info("change notices from {}: listening again", l->database);
      l->unreachable = false;
      l->listening.clear();
    }
    Status listened;
    for (const std::string& topic : topics) {
      {
        std::lock_guard lock(r.mu);
        if (l->listening.count(topic)) continue;
      }
      listened = conn->Listen(Channel(topic));
      if (!listened.ok()) break;
      {
        std::lock_guard lock(r.mu);
        l->listening.insert(topic);
      }
      r.listening_changed.notify_all();
    }
    if (!listened.ok()) {
      spdlog::warn("change notices from {}: {}", l->database, listened.message());
      conn.reset();
      missed = true;
      continue;
    }
    if (missed) {
      missed = false;
      std::lock_guard lock(r.mu);
      for (const std::string& topic : topics) DispatchLocked(r, Key(l->database, topic), "");
    }
    auto notices = conn->Wait(std::chrono::milliseconds(200));
    if (!notices.ok()) {
      spdlog::warn("change notices from {}: {}", l->database, notices.status().message());
      conn.reset();
      missed = true;
      continue;
    }
    std::lock_guard lock(r.mu);
    for (const Notice& n : *notices) {
      // "<origin> <payload>"
      std::string_view wire = n.payload;
      size_t space = wire.find(' ');
      if (space == std::string_view::npos || n.channel.size() < kChannelPrefix) continue;
      if (wire.substr(0, space) == Origin()) continue;
      DispatchLocked(r, Key(l->database, n.channel.substr(kChannelPrefix)), wire.substr(space + 1));
    }
  }
}

}  // namespace

void NotifyChange(Database& db, std::string_view topic, std::string_view payload) {
  const std::string database = db.Describe();
  {
    Registry& r = Subscribers();
    std::lock_guard lock(r.mu);
    DispatchLocked(r, Key(database, topic), payload);
  }
  if (!db.notice_connector()) return;
  Status sent =
      db.Exec("SELECT pg_notify($1, $2)", {Channel(topic), Origin() + " " + std::string(payload)})
          .status();
  if (!sent.ok()) {
    spdlog::warn(
        "cannot tell other processes about a change of {} on {}: {}; they see it at "
        "their next periodic reload",
        topic, database, sent.message());
  }
}

ChangeSubscription::~ChangeSubscription() {
  Registry& r = Subscribers();
  std::unique_lock lock(r.mu);
  auto it = r.subscribers.find(key_);
  if (it == r.subscribers.end()) return;
  it->second.erase(id_);
  if (!it->second.empty()) return;
  r.subscribers.erase(it);
  // The database's last subscriber: its listening thread ends within a Wait (200 ms) or a
  // connection attempt; wait for that, so a process that stops its servers and then exits (or
  // drops the database) never has the thread still reading it or logging during exit.
  const std::string database = key_.substr(0, key_.find('\n'));
  if (!TopicsLocked(r, database).empty()) return;
  r.listening_changed.notify_all();
  r.listening_changed.wait_for(lock, std::chrono::seconds(3),
                               [&] { return r.listeners.count(database) == 0; });
}

std::unique_ptr<ChangeSubscription> SubscribeToChanges(const Database& db, std::string_view topic,
                                                       Callback on_change) {
  Registry& r = Subscribers();
  const std::string database = db.Describe();
  NoticeConnector connector = db.notice_connector();
  std::unique_lock lock(r.mu);
  const uint64_t id = r.next_id++;
  std::string key = Key(database, topic);
  r.subscribers[key][id] = std::move(on_change);
  auto subscription = std::make_unique<ChangeSubscription>(key, id);
  if (!connector) return subscription;

  std::shared_ptr<Listener>& slot = r.listeners[database];
  if (!slot) {
    slot = std::make_shared<Listener>();
    slot->connect = std::move(connector);
    slot->database = database;
    std::thread(RunListener, slot).detach();
  }
  std::shared_ptr<Listener> listener = slot;
  const std::string wanted(topic);
  r.listening_changed.wait_for(lock, std::chrono::seconds(5), [&] {
    return listener->listening.count(wanted) > 0 || listener->unreachable;
  });
  return subscription;
}

std::unique_ptr<ChangeSubscription> SubscribeToChanges(const Database& db, std::string_view topic,
                                                       std::function<void()> on_change) {
  return SubscribeToChanges(db, topic,
                            Callback([fn = std::move(on_change)](std::string_view) { fn(); }));
}

}  // namespace slipway::db
