// The Database interface, run identically against SQLite and PostgreSQL.
#include "db/database.h"

#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <atomic>
#include <limits>
#include <thread>

#include "support/postgres.h"
#include "support/test_support.h"

namespace slipway::db {
namespace {

using testing::TestDriver;

class DbTest : public ::testing::TestWithParam<TestDriver> {
 protected:
  void SetUp() override {
    url_ = testing::FreshDatabaseUrl(GetParam(), dir_.path());
    auto db = Open(url_);
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    db_ = std::move(db).value();
  }

  void Exec(std::string_view sql, const Params& params = {}) {
    auto n = db_->Exec(sql, params);
    ASSERT_TRUE(n.ok()) << n.status().ToString();
  }

  testing::TempDir dir_;
  std::string url_;
  std::unique_ptr<Database> db_;
};

TEST_P(DbTest, DialectMatchesDriver) {
  EXPECT_EQ(db_->dialect(),
            GetParam() == TestDriver::kSqlite ? Dialect::kSqlite : Dialect::kPostgres);
}

TEST_P(DbTest, CrudRoundTrip) {
  Exec("CREATE TABLE items (id TEXT PRIMARY KEY, name TEXT NOT NULL, qty BIGINT NOT NULL)");
  auto inserted = db_->Exec("INSERT INTO items (id, name, qty) VALUES ($1, $2, $3), ($4, $5, $6)",
                            {"a", "apple", 3, "b", "banana", 5});
  ASSERT_TRUE(inserted.ok()) << inserted.status().ToString();
  EXPECT_EQ(*inserted, 2);

  auto rows = db_->Query("SELECT id, name, qty FROM items ORDER BY id");
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  ASSERT_EQ(rows->size(), 2u);
  EXPECT_EQ((*rows)[0]["name"].AsText(), "apple");
  EXPECT_EQ((*rows)[1]["qty"].AsInt(), 5);

  auto updated = db_->Exec("UPDATE items SET qty = qty + $1 WHERE id = $2", {10, "a"});
  ASSERT_TRUE(updated.ok()) << updated.status().ToString();
  EXPECT_EQ(*updated, 1);
  auto row = db_->QueryRow("SELECT qty FROM items WHERE id = $1", {"a"});
  ASSERT_TRUE(row.ok() && row->has_value()) << row.status().ToString();
  EXPECT_EQ((**row)["qty"].AsInt(), 13);

  auto deleted = db_->Exec("DELETE FROM items WHERE qty < $1", {100});
  ASSERT_TRUE(deleted.ok());
  EXPECT_EQ(*deleted, 2);
  auto none = db_->QueryRow("SELECT id FROM items WHERE id = $1", {"a"});
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());

  // A SELECT after a DELETE changed nothing.
  auto select_count = db_->Exec("SELECT id FROM items");
  ASSERT_TRUE(select_count.ok());
  EXPECT_EQ(*select_count, 0);
}

TEST_P(DbTest, TypedValuesRoundTripIncludingNullsAndBlobs) {
  Exec("CREATE TABLE v (id BIGINT PRIMARY KEY, i BIGINT, d DOUBLE PRECISION, t TEXT, b " +
       std::string(db_->dialect() == Dialect::kPostgres ? "BYTEA" : "BLOB") + ")");
  const std::string binary("\x00\x01\xff\xfe'\"\\x", 9);
  const std::string text = "quote ' double \" backslash \\ unicode \xc3\xa9\xe2\x82\xac";
  Exec("INSERT INTO v (id, i, d, t, b) VALUES ($1, $2, $3, $4, $5)",
       {1, std::numeric_limits<int64_t>::max(), 3.25, text, Blob{binary}});
  Exec("INSERT INTO v (id, i, d, t, b) VALUES ($1, $2, $3, $4, $5)",
       {2, std::numeric_limits<int64_t>::min(), -0.5, "", Blob{""}});
  Exec("INSERT INTO v (id, i, d, t, b) VALUES ($1, $2, $3, $4, $5)",
       {3, nullptr, Value(), std::optional<std::string>(), Value()});

  auto rows = db_->Query("SELECT id, i, d, t, b FROM v ORDER BY id");
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  ASSERT_EQ(rows->size(), 3u);
  const Row& r1 = (*rows)[0];
  EXPECT_EQ(r1["i"].type(), Value::Type::kInt);
  EXPECT_EQ(r1["i"].AsInt(), std::numeric_limits<int64_t>::max());
  EXPECT_EQ(r1["d"].type(), Value::Type::kDouble);
  EXPECT_DOUBLE_EQ(r1["d"].AsDouble(), 3.25);
  EXPECT_EQ(r1["t"].type(), Value::Type::kText);
  EXPECT_EQ(r1["t"].AsText(), text);
  EXPECT_EQ(r1["b"].type(), Value::Type::kBlob);
  EXPECT_EQ(r1["b"], Value(Blob{binary}));

  const Row& r2 = (*rows)[1];
  EXPECT_EQ(r2["i"].AsInt(), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(r2["t"], Value(""));
  EXPECT_FALSE(r2["t"].is_null());
  EXPECT_EQ(r2["b"], Value(Blob{""}));

  const Row& r3 = (*rows)[2];
  for (size_t i = 1; i < r3.size(); ++i) EXPECT_TRUE(r3[i].is_null()) << r3.column_name(i);
  EXPECT_EQ(r3["i"].AsOptionalInt(), std::nullopt);
  EXPECT_EQ(r3["t"].AsOptionalText(), std::nullopt);

  // NULL parameters compare as SQL NULL: nothing equals them.
  auto by_null = db_->Query("SELECT id FROM v WHERE t = $1", {nullptr});
  ASSERT_TRUE(by_null.ok()) << by_null.status().ToString();
  EXPECT_TRUE(by_null->empty());
  auto is_null = db_->Query("SELECT id FROM v WHERE t IS NULL");
  ASSERT_TRUE(is_null.ok());
  ASSERT_EQ(is_null->size(), 1u);
  EXPECT_EQ((*is_null)[0]["id"].AsInt(), 3);
}

TEST_P(DbTest, ColumnsByNameAndIndexAndAggregates) {
  Exec("CREATE TABLE n (k TEXT NOT NULL, v BIGINT NOT NULL)");
  for (int i = 1; i <= 4; ++i) Exec("INSERT INTO n (k, v) VALUES ($1, $2)", {"x", i});
  auto row =
      db_->QueryRow("SELECT COUNT(*) AS c, SUM(v) AS s, MAX(v) AS m FROM n WHERE k = $1", {"x"});
  ASSERT_TRUE(row.ok() && row->has_value()) << row.status().ToString();
  const Row& r = **row;
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r.column_name(1), "s");
  EXPECT_EQ(r[0].AsInt(), 4);
  EXPECT_EQ(r["s"].AsInt(), 10);  // NUMERIC on PostgreSQL, INTEGER on SQLite: both read as 10
  EXPECT_EQ(r["m"].AsInt(), 4);
  EXPECT_TRUE(r.Has("c"));
  EXPECT_FALSE(r.Has("nope"));

  auto many = db_->QueryRow("SELECT v FROM n");
  EXPECT_EQ(many.status().code(), Code::kInternal);
}

TEST_P(DbTest, ParametersAreNumberedAndReusable) {
  Exec("CREATE TABLE p (a TEXT, b TEXT)");
  // $1 used twice; parameters are values, never SQL.
  Exec("INSERT INTO p (a, b) VALUES ($1, $1)", {"x'); DROP TABLE p; --"});
  auto row = db_->QueryRow("SELECT a, b FROM p WHERE a = $1 AND b = $1", {"x'); DROP TABLE p; --"});
  ASSERT_TRUE(row.ok() && row->has_value()) << row.status().ToString();
  EXPECT_EQ((**row)["b"].AsText(), "x'); DROP TABLE p; --");

  auto too_few = db_->Exec("INSERT INTO p (a, b) VALUES ($1, $2)", {"only one"});
  EXPECT_EQ(too_few.status().code(), Code::kInvalidArgument) << too_few.status().ToString();
  auto too_many = db_->Exec("INSERT INTO p (a, b) VALUES ($1, $2)", {"a", "b", "c"});
  EXPECT_EQ(too_many.status().code(), Code::kInvalidArgument) << too_many.status().ToString();
  auto gap = db_->Exec("INSERT INTO p (a, b) VALUES ($1, $3)", {"a", "b", "c"});
  EXPECT_EQ(gap.status().code(), Code::kInvalidArgument) << gap.status().ToString();
  auto two_statements = db_->Exec("DELETE FROM p; DELETE FROM p");
  EXPECT_FALSE(two_statements.ok());
}

TEST_P(DbTest, ConstraintViolationsHavePortableCodes) {
  Exec("CREATE TABLE parent (id TEXT PRIMARY KEY)");
  Exec("CREATE TABLE child (id TEXT PRIMARY KEY, parent_id TEXT NOT NULL REFERENCES parent(id))");
  Exec("INSERT INTO parent (id) VALUES ($1)", {"p"});
  auto duplicate = db_->Exec("INSERT INTO parent (id) VALUES ($1)", {"p"});
  EXPECT_EQ(duplicate.status().code(), Code::kAlreadyExists) << duplicate.status().ToString();
  auto orphan = db_->Exec("INSERT INTO child (id, parent_id) VALUES ($1, $2)", {"c", "nobody"});
  EXPECT_EQ(orphan.status().code(), Code::kFailedPrecondition) << orphan.status().ToString();
  auto not_null = db_->Exec("INSERT INTO child (id, parent_id) VALUES ($1, $2)", {"c", nullptr});
  EXPECT_EQ(not_null.status().code(), Code::kFailedPrecondition) << not_null.status().ToString();
  auto bad_sql = db_->Exec("INSERT INTO no_such_table (id) VALUES ($1)", {"x"});
  EXPECT_EQ(bad_sql.status().code(), Code::kInternal) << bad_sql.status().ToString();
  EXPECT_NE(bad_sql.status().message().find("no_such_table"), std::string::npos)
      << bad_sql.status().message();

  auto upsert = db_->Exec("INSERT INTO parent (id) VALUES ($1) ON CONFLICT (id) DO NOTHING", {"p"});
  ASSERT_TRUE(upsert.ok()) << upsert.status().ToString();
  EXPECT_EQ(*upsert, 0);
}

TEST_P(DbTest, TransactionCommitsOrRollsBackAsAWhole) {
  Exec("CREATE TABLE t (id TEXT PRIMARY KEY)");
  Status ok = db_->WithTransaction([](Executor& tx) -> Status {
    SLIPWAY_RETURN_IF_ERROR(tx.Exec("INSERT INTO t (id) VALUES ($1)", {"a"}).status());
    return tx.Exec("INSERT INTO t (id) VALUES ($1)", {"b"}).status();
  });
  ASSERT_TRUE(ok.ok()) << ok.ToString();

  // The callback's own error: everything it wrote is undone, and its status comes back.
  Status failed = db_->WithTransaction([](Executor& tx) -> Status {
    SLIPWAY_RETURN_IF_ERROR(tx.Exec("INSERT INTO t (id) VALUES ($1)", {"c"}).status());
    return Status::FailedPrecondition("changed my mind");
  });
  EXPECT_EQ(failed, Status::FailedPrecondition("changed my mind"));

  // A failing statement half-way: the earlier insert is undone too.
  Status dup = db_->WithTransaction([](Executor& tx) -> Status {
    SLIPWAY_RETURN_IF_ERROR(tx.Exec("INSERT INTO t (id) VALUES ($1)", {"d"}).status());
    return tx.Exec("INSERT INTO t (id) VALUES ($1)", {"a"}).status();
  });
  EXPECT_EQ(dup.code(), Code::kAlreadyExists) << dup.ToString();

  // A caller that swallows a failed statement cannot commit the rest by accident on either
  // driver: PostgreSQL refuses the rest of the transaction, and the commit reports it.
  Exec("CREATE TABLE u (id TEXT PRIMARY KEY)");
  Exec("INSERT INTO u (id) VALUES ($1)", {"taken"});
  Status swallowed = db_->WithTransaction([](Executor& tx) -> Status {
    (void)tx.Exec("INSERT INTO u (id) VALUES ($1)", {"taken"});  // fails; error ignored
    (void)tx.Exec("INSERT INTO t (id) VALUES ($1)", {"e"});
    return Status::Ok();
  });
  EXPECT_EQ(swallowed.code(), Code::kFailedPrecondition) << swallowed.ToString();

  auto rows = db_->Query("SELECT id FROM t ORDER BY id");
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 2u);
  EXPECT_EQ((*rows)[0]["id"].AsText(), "a");
  EXPECT_EQ((*rows)[1]["id"].AsText(), "b");

  // The pool still works after rollbacks (no connection left inside a transaction).
  for (int i = 0; i < 20; ++i) Exec("INSERT INTO t (id) VALUES ($1)", {"x" + std::to_string(i)});
}

TEST_P(DbTest, ReadModifyWriteTransactionsFromManyThreadsLoseNoUpdate) {
  Exec("CREATE TABLE counter (id TEXT PRIMARY KEY, n BIGINT NOT NULL)");
  Exec("INSERT INTO counter (id, n) VALUES ($1, $2)", {"c", 0});
  constexpr int kThreads = 4;
  constexpr int kIncrements = 15;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kIncrements; ++i) {
        // Read, then write what was read plus one: correct only if transactions serialize.
        Status s = db_->WithTransaction([](Executor& tx) -> Status {
          SLIPWAY_ASSIGN_OR_RETURN(auto row,
                                   tx.QueryRow("SELECT n FROM counter WHERE id = $1", {"c"}));
          int64_t n = (*row)["n"].AsInt();
          return tx.Exec("UPDATE counter SET n = $1 WHERE id = $2", {n + 1, "c"}).status();
        });
        if (!s.ok()) {
          ADD_FAILURE() << s.ToString();
          ++failures;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  auto row = db_->QueryRow("SELECT n FROM counter WHERE id = $1", {"c"});
  ASSERT_TRUE(row.ok() && row->has_value());
  EXPECT_EQ((**row)["n"].AsInt(), kThreads * kIncrements);
}

TEST_P(DbTest, ConcurrentWritersOnSeparateStatements) {
  Exec("CREATE TABLE log (writer BIGINT NOT NULL, seq BIGINT NOT NULL, PRIMARY KEY (writer, seq))");
  constexpr int kThreads = 8;
  constexpr int kRows = 25;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kRows; ++i) {
        auto n = db_->Exec("INSERT INTO log (writer, seq) VALUES ($1, $2)", {t, i});
        if (!n.ok()) ADD_FAILURE() << n.status().ToString();
        auto r = db_->Query("SELECT COUNT(*) AS c FROM log WHERE writer = $1", {t});
        if (!r.ok()) ADD_FAILURE() << r.status().ToString();
      }
    });
  }
  for (auto& t : threads) t.join();
  auto row = db_->QueryRow("SELECT COUNT(*) AS c FROM log");
  ASSERT_TRUE(row.ok() && row->has_value());
  EXPECT_EQ((**row)["c"].AsInt(), kThreads * kRows);
}

TEST_P(DbTest, ScriptsRunSeveralStatements) {
  Status s = db_->ExecScript(
      "CREATE TABLE s1 (id TEXT PRIMARY KEY); CREATE INDEX s1_id ON s1 (id);\n"
      "INSERT INTO s1 (id) VALUES ('a');");
  ASSERT_TRUE(s.ok()) << s.ToString();
  auto row = db_->QueryRow("SELECT id FROM s1");
  ASSERT_TRUE(row.ok() && row->has_value());
  EXPECT_EQ((**row)["id"].AsText(), "a");
}

TEST_P(DbTest, DescribeNamesTheDatabaseWithoutSecrets) {
  std::string d = db_->Describe();
  EXPECT_FALSE(d.empty());
  if (GetParam() == TestDriver::kSqlite) {
    EXPECT_EQ(d.rfind("sqlite:", 0), 0u) << d;
  } else {
    EXPECT_NE(d.find("127.0.0.1"), std::string::npos) << d;
  }
}

INSTANTIATE_TEST_SUITE_P(Db, DbTest, ::testing::Values(TestDriver::kSqlite, TestDriver::kPostgres),
                         [](const auto& info) { return testing::TestDriverName(info.param); });

// --- driver-specific behaviour ----------------------------------------------------------

TEST(SqliteTest, FileUsesWalAndForeignKeysAndAllUrlFormsOpenIt) {
  testing::TempDir dir;
  const std::string path = (dir.path() / "nested" / "main.db").string();
  auto db = Open("sqlite://" + path);
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  auto mode = (*db)->QueryRow("PRAGMA journal_mode");
  ASSERT_TRUE(mode.ok() && mode->has_value());
  EXPECT_EQ((**mode)[0].AsText(), "wal");
  auto fk = (*db)->QueryRow("PRAGMA foreign_keys");
  ASSERT_TRUE(fk.ok() && fk->has_value());
  EXPECT_EQ((**fk)[0].AsInt(), 1);
  ASSERT_TRUE((*db)->ExecScript("CREATE TABLE x (id TEXT); INSERT INTO x VALUES ('hi')").ok());

  // The plain path and the sqlite: form reach the same file.
  for (const std::string& url : {path, "sqlite:" + path}) {
    auto again = Open(url);
    ASSERT_TRUE(again.ok()) << url << ": " << again.status().ToString();
    EXPECT_EQ((*again)->dialect(), Dialect::kSqlite);
    auto row = (*again)->QueryRow("SELECT id FROM x");
    ASSERT_TRUE(row.ok() && row->has_value()) << url;
    EXPECT_EQ((**row)[0].AsText(), "hi");
  }
}

TEST(SqliteTest, UnopenablePathSaysWhatToCheck) {
  testing::TempDir dir;
  std::filesystem::path file = dir.path() / "a-file";
  testing::WriteRandomFile(file, 10);
  auto db = Open((file / "main.db").string());  // a directory under a regular file
  ASSERT_FALSE(db.ok());
  EXPECT_EQ(db.status().code(), Code::kUnavailable) << db.status().ToString();
  EXPECT_NE(db.status().message().find("a-file"), std::string::npos) << db.status().message();
}

TEST(SqliteTest, WriterWaitsForAnotherConnectionsTransaction) {
  testing::TempDir dir;
  auto a = Open((dir.path() / "w.db").string());
  auto b = Open((dir.path() / "w.db").string());
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_TRUE((*a)->ExecScript("CREATE TABLE w (id BIGINT)").ok());
  std::atomic<bool> in_tx{false};
  std::thread holder([&] {
    Status s = (*a)->WithTransaction([&](Executor& tx) -> Status {
      SLIPWAY_RETURN_IF_ERROR(tx.Exec("INSERT INTO w (id) VALUES ($1)", {1}).status());
      in_tx = true;
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
      return Status::Ok();
    });
    EXPECT_TRUE(s.ok()) << s.ToString();
  });
  while (!in_tx) std::this_thread::yield();
  // The busy timeout makes this wait for the other transaction instead of failing.
  auto n = (*b)->Exec("INSERT INTO w (id) VALUES ($1)", {2});
  holder.join();
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  auto row = (*b)->QueryRow("SELECT COUNT(*) AS c FROM w");
  EXPECT_EQ((**row)["c"].AsInt(), 2);
}

TEST(PostgresTest, KeywordConninfoReachesTheSameDatabase) {
  const std::string url = testing::PostgresUrlForTests();
  // Rewrite the URL as libpq keywords (host=... port=... dbname=...).
  char* err = nullptr;
  PQconninfoOption* options = PQconninfoParse(url.c_str(), &err);
  ASSERT_NE(options, nullptr) << (err ? err : "");
  std::string conninfo;
  for (PQconninfoOption* o = options; o->keyword != nullptr; ++o) {
    if (o->val != nullptr && *o->val != '\0') {
      conninfo += std::string(o->keyword) + "=" + o->val + " ";
    }
  }
  PQconninfoFree(options);
  auto by_url = Open(url);
  auto by_keywords = Open(conninfo);
  ASSERT_TRUE(by_url.ok()) << by_url.status().ToString();
  ASSERT_TRUE(by_keywords.ok()) << conninfo << ": " << by_keywords.status().ToString();
  EXPECT_EQ((*by_keywords)->dialect(), Dialect::kPostgres);
  ASSERT_TRUE((*by_url)->ExecScript("CREATE TABLE seen (id TEXT)").ok());
  auto rows = (*by_keywords)->Query("SELECT id FROM seen");
  EXPECT_TRUE(rows.ok()) << rows.status().ToString();
}

TEST(PostgresTest, UnreachableServerIsUnavailableWithAHint) {
  const int port = testing::FreePort();
  auto db = Open("postgresql://postgres:secret@127.0.0.1:" + std::to_string(port) + "/x");
  ASSERT_FALSE(db.ok());
  EXPECT_EQ(db.status().code(), Code::kUnavailable);
  EXPECT_NE(db.status().message().find("check that the server is running"), std::string::npos)
      << db.status().message();
  EXPECT_EQ(db.status().message().find("secret"), std::string::npos) << db.status().message();
}

TEST(DbOpenTest, UnknownSchemeIsRefusedWithTheAcceptedForms) {
  auto db = Open("mysql://root@localhost/x");
  ASSERT_FALSE(db.ok());
  EXPECT_EQ(db.status().code(), Code::kInvalidArgument);
  EXPECT_NE(db.status().message().find("postgresql://"), std::string::npos);
  EXPECT_EQ(Open("").status().code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace slipway::db
