#include "db/postgres/postgres_driver.h"

#include <libpq-fe.h>

#include <poll.h>

#include <cerrno>
#include <charconv>
#include <cstring>

#include "db/connection.h"
#include "db/pooled_database.h"

namespace slipway::db {
namespace {

// Type OIDs from PostgreSQL's pg_type catalog (stable across versions).
constexpr Oid kBoolOid = 16;
constexpr Oid kByteaOid = 17;
constexpr Oid kInt8Oid = 20;
constexpr Oid kInt2Oid = 21;
constexpr Oid kInt4Oid = 23;
constexpr Oid kOidOid = 26;
constexpr Oid kFloat4Oid = 700;
constexpr Oid kFloat8Oid = 701;
constexpr Oid kNumericOid = 1700;

// "postgresql://user:secret@host/db" -> "postgresql://user@host/db"; "password=x" dropped.
std::string RedactPassword(std::string_view url) {
  std::string s(url);
  if (size_t scheme = s.find("://"); scheme != std::string::npos) {
    size_t at = s.find('@', scheme + 3);
    size_t colon = s.find(':', scheme + 3);
    if (at != std::string::npos && colon != std::string::npos && colon < at) {
      s.erase(colon, at - colon);
    }
    return s;
  }
  if (size_t p = s.find("password="); p != std::string::npos) {
    size_t end = s.find(' ', p);
    s.erase(p, end == std::string::npos ? std::string::npos : end - p + 1);
  }
  return s;
}

// The highest $N the SQL uses, and whether every $1..$N appears, ignoring quoted text and
// comments. PostgreSQL would accept an unused typed parameter that SQLite refuses; checking
// here makes both drivers agree.
struct ParamUse {
  int max = 0;
  std::vector<bool> seen;
};

ParamUse ScanParams(std::string_view sql) {
  ParamUse use;
  for (size_t i = 0; i < sql.size(); ++i) {
    char c = sql[i];
    if (c == '\'' || c == '"') {
      size_t end = sql.find(c, i + 1);
      if (end == std::string_view::npos) break;
      i = end;
    } else if (c == '-' && i + 1 < sql.size() && sql[i + 1] == '-') {
      size_t end = sql.find('\n', i);
      if (end == std::string_view::npos) break;
      i = end;
    } else if (c == '$' && i + 1 < sql.size() && sql[i + 1] >= '1' && sql[i + 1] <= '9') {
      int n = 0;
      size_t j = i + 1;
      while (j < sql.size() && sql[j] >= '0' && sql[j] <= '9') n = n * 10 + (sql[j++] - '0');
      if (n > use.max) use.max = n;
      if (static_cast<int>(use.seen.size()) < n) use.seen.resize(n, false);
      use.seen[n - 1] = true;
      i = j - 1;
    }
  }
  return use;
}

// libpq's messages end with a newline.
std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

class PostgresConnection final : public Connection {
 public:
  static Result<std::unique_ptr<Connection>> Open(const std::string& url,
                                                  const std::string& description) {
    PGconn* raw = PQconnectdb(url.c_str());
    auto conn = std::unique_ptr<PostgresConnection>(new PostgresConnection(raw));
    if (raw == nullptr || PQstatus(raw) != CONNECTION_OK) {
      std::string why = raw ? Trim(PQerrorMessage(raw)) : "out of memory";
      return Status::Unavailable("cannot connect to PostgreSQL at " + description + ": " + why +
                                 " (check that the server is running and that the URL's host, "
                                 "port, user and database are right).");
    }
    // Notices such as "relation already exists, skipping" are not errors; keep them off stderr.
    PQsetNoticeProcessor(
        raw, [](void*, const char*) {}, nullptr);
    return std::unique_ptr<Connection>(std::move(conn));
  }

  ~PostgresConnection() override {
    if (conn_ != nullptr) PQfinish(conn_);
  }

  Result<int64_t> Run(std::string_view sql, const Params& params, Rows* rows) override {
    retryable_ = false;
    ParamUse use = ScanParams(sql);
    if (use.max != static_cast<int>(params.size())) {
      return Status::InvalidArgument("the statement takes " + std::to_string(use.max) +
                                     " parameters but " + std::to_string(params.size()) +
                                     " were given: " + AbbreviateSql(sql));
    }
    for (int i = 0; i < use.max; ++i) {
      if (!use.seen[i]) {
        return Status::InvalidArgument("the statement does not use parameter $" +
                                       std::to_string(i + 1) + ": " + AbbreviateSql(sql));
      }
    }
    const int n = static_cast<int>(params.size());
    std::vector<Oid> types(n, 0);
    std::vector<const char*> values(n, nullptr);
    std::vector<int> lengths(n, 0);
    std::vector<int> formats(n, 0);
    std::vector<std::string> numbers(n);
    for (int i = 0; i < n; ++i) {
      const Value& v = params[i];
      switch (v.type()) {
        case Value::Type::kNull:
          break;
        case Value::Type::kInt:
          types[i] = kInt8Oid;
          numbers[i] = v.AsText();
          values[i] = numbers[i].c_str();
          break;
        case Value::Type::kDouble:
          types[i] = kFloat8Oid;
          numbers[i] = v.AsText();
          values[i] = numbers[i].c_str();
          break;
        case Value::Type::kText:
          // Type left to the server (unknown), so text binds to TEXT, JSON or any column type.
          numbers[i] = std::string(v.bytes());  // text parameters must be NUL-terminated
          values[i] = numbers[i].c_str();
          break;
        case Value::Type::kBlob:
          types[i] = kByteaOid;
          values[i] = v.bytes().data();
          lengths[i] = static_cast<int>(v.bytes().size());
          formats[i] = 1;  // binary: the bytes as they are
          if (values[i] == nullptr) values[i] = "";
          break;
      }
    }
    std::string sql_text(sql);
    PGresult* res = PQexecParams(conn_, sql_text.c_str(), n, types.data(), values.data(),
                                 lengths.data(), formats.data(), 0);
    ResultGuard guard{res};
    const ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) return Error(res, sql);
    if (rows != nullptr && st == PGRES_TUPLES_OK) ReadRows(res, rows);
    const char* affected = PQcmdTuples(res);
    int64_t count = 0;
    if (affected != nullptr && *affected != '\0') {
      std::from_chars(affected, affected + std::strlen(affected), count);
    }
    return count;
  }

  Status ExecScript(std::string_view sql) override {
    retryable_ = false;
    std::string script(sql);
    PGresult* res = PQexec(conn_, script.c_str());
    ResultGuard guard{res};
    const ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) return Error(res, sql);
    return Status::Ok();
  }

  Status Begin(Isolation isolation) override {
    return ExecScript(isolation == Isolation::kSerializable
                          ? "BEGIN ISOLATION LEVEL SERIALIZABLE"
                          : "BEGIN ISOLATION LEVEL READ COMMITTED");
  }

  Status Commit() override {
    retryable_ = false;
    PGresult* res = PQexec(conn_, "COMMIT");
    ResultGuard guard{res};
    if (PQresultStatus(res) != PGRES_COMMAND_OK) return Error(res, "COMMIT");
    // COMMIT of a transaction in which a statement failed answers "ROLLBACK", not an error.
    if (std::strcmp(PQcmdStatus(res), "ROLLBACK") == 0) {
      return Status::Aborted(
          "the transaction was rolled back because a statement inside it failed; the caller "
          "ignored that statement's error and must not.");
    }
    return Status::Ok();
  }

  Status Rollback() override {
    if (PQtransactionStatus(conn_) == PQTRANS_IDLE) return Status::Ok();
    bool keep = retryable_;  // a rollback must not hide why the transaction failed
    Status s = ExecScript("ROLLBACK");
    retryable_ = keep;
    return s;
  }

  bool last_error_retryable() const override { return retryable_; }
  bool broken() const override {
    return PQstatus(conn_) != CONNECTION_OK || PQtransactionStatus(conn_) != PQTRANS_IDLE;
  }

 private:
  struct ResultGuard {
    PGresult* res;
    ~ResultGuard() {
      if (res != nullptr) PQclear(res);
    }
  };

  explicit PostgresConnection(PGconn* conn) : conn_(conn) {}

  static void ReadRows(PGresult* res, Rows* rows) {
    const int ncols = PQnfields(res);
    auto columns = std::make_shared<std::vector<std::string>>();
    std::vector<Oid> types;
    for (int c = 0; c < ncols; ++c) {
      columns->push_back(PQfname(res, c));
      types.push_back(PQftype(res, c));
    }
    const int nrows = PQntuples(res);
    rows->reserve(rows->size() + nrows);
    for (int r = 0; r < nrows; ++r) {
      std::vector<Value> values;
      values.reserve(ncols);
      for (int c = 0; c < ncols; ++c) {
        if (PQgetisnull(res, r, c)) {
          values.emplace_back();
          continue;
        }
        const char* text = PQgetvalue(res, r, c);
        const size_t len = static_cast<size_t>(PQgetlength(res, r, c));
        values.push_back(Convert(types[c], text, len));
      }
      rows->emplace_back(columns, std::move(values));
    }
  }

  static Value Convert(Oid type, const char* text, size_t len) {
    switch (type) {
      case kInt8Oid:
      case kInt2Oid:
      case kInt4Oid:
      case kOidOid: {
        int64_t v = 0;
        std::from_chars(text, text + len, v);
        return Value(v);
      }
      case kBoolOid:
        return Value(int64_t{text[0] == 't' ? 1 : 0});
      case kFloat4Oid:
      case kFloat8Oid:
        return Value(std::strtod(text, nullptr));
      case kNumericOid: {
        std::string_view s(text, len);
        if (s.find_first_of(".eEN") == std::string_view::npos) {  // N: NaN
          int64_t v = 0;
          auto [p, ec] = std::from_chars(text, text + len, v);
          if (ec == std::errc()) return Value(v);
        }
        return Value(std::strtod(text, nullptr));
      }
      case kByteaOid: {
        size_t n = 0;
        unsigned char* bytes = PQunescapeBytea(reinterpret_cast<const unsigned char*>(text), &n);
        Blob blob{std::string(reinterpret_cast<const char*>(bytes), n)};
        PQfreemem(bytes);
        return Value(std::move(blob));
      }
      default:
        return Value(std::string(text, len));
    }
  }

  Status Error(PGresult* res, std::string_view sql) {
    const char* state_c = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
    const std::string state = state_c ? state_c : "";
    std::string message = Trim(res ? PQresultErrorMessage(res) : "");
    if (message.empty()) message = Trim(PQerrorMessage(conn_));
    const std::string detail = message + " [" + AbbreviateSql(sql) + "]";
    if (state.empty() || PQstatus(conn_) != CONNECTION_OK) {
      return Status::Unavailable("lost the connection to PostgreSQL: " + detail +
                                 " (check that the server is running; the next call reconnects).");
    }
    auto cls = state.substr(0, 2);
    if (state == "23505")
      return Status::AlreadyExists("a row with the same key already exists: " + detail);
    if (cls == "23")
      return Status::FailedPrecondition("the change violates a database constraint: " + detail);
    if (state == "40001" || state == "40P01") {
      retryable_ = true;
      return Status::Aborted("the transaction conflicted with a concurrent one: " + detail);
    }
    if (state == "08P01") {
      return Status::InvalidArgument("the statement and its parameters do not match: " + detail);
    }
    if (cls == "08" || state == "57P01" || state == "57P02" || state == "57P03" || cls == "53") {
      return Status::Unavailable("PostgreSQL cannot serve the statement right now: " + detail +
                                 " (retry later; check the server's health).");
    }
    if (state == "57014") return Status::Canceled("the statement was canceled: " + detail);
    if (state == "42P18" || state == "22P02" || state == "42804" || cls == "22") {
      return Status::InvalidArgument("the statement and its parameters do not match: " + detail);
    }
    return Status::Internal("PostgreSQL could not run the statement: " + detail);
  }

  PGconn* conn_;
  bool retryable_ = false;
};

// A connection that only LISTENs: notices arrive on its socket between statements, so it runs
// none but LISTEN and waits in poll() for the rest of its life.
class PostgresNoticeConnection final : public NoticeConnection {
 public:
  static Result<std::unique_ptr<NoticeConnection>> Open(const std::string& url,
                                                        const std::string& description) {
    PGconn* raw = PQconnectdb(url.c_str());
    std::unique_ptr<PostgresNoticeConnection> conn(new PostgresNoticeConnection(raw, description));
    if (raw == nullptr || PQstatus(raw) != CONNECTION_OK) {
      std::string why = raw ? Trim(PQerrorMessage(raw)) : "out of memory";
      return Status::Unavailable("cannot connect to PostgreSQL at " + description +
                                 " to listen for changes: " + why +
                                 " (check that the server is running).");
    }
    PQsetNoticeProcessor(
        raw, [](void*, const char*) {}, nullptr);
    return std::unique_ptr<NoticeConnection>(std::move(conn));
  }

  ~PostgresNoticeConnection() override {
    if (conn_ != nullptr) PQfinish(conn_);
  }

  Status Listen(std::string_view channel) override {
    char* quoted = PQescapeIdentifier(conn_, channel.data(), channel.size());
    if (quoted == nullptr) return Lost("quoting the channel name");
    std::string sql = std::string("LISTEN ") + quoted;
    PQfreemem(quoted);
    PGresult* res = PQexec(conn_, sql.c_str());
    const bool ok = res != nullptr && PQresultStatus(res) == PGRES_COMMAND_OK;
    PQclear(res);
    if (!ok) return Lost(sql);
    return Status::Ok();
  }

  Result<std::vector<Notice>> Wait(std::chrono::milliseconds timeout) override {
    std::vector<Notice> out;
    // Notices may already have arrived with the answer to LISTEN.
    SLIPWAY_RETURN_IF_ERROR(Collect(&out));
    if (!out.empty()) return out;
    pollfd p{PQsocket(conn_), POLLIN, 0};
    if (p.fd < 0) return Lost("waiting for notices");
    int r = ::poll(&p, 1, static_cast<int>(timeout.count()));
    if (r < 0 && errno != EINTR) return Lost("waiting for notices");
    if (r > 0) {
      if (PQconsumeInput(conn_) == 0) return Lost("reading notices");
      SLIPWAY_RETURN_IF_ERROR(Collect(&out));
    }
    return out;
  }

 private:
  PostgresNoticeConnection(PGconn* conn, std::string description)
      : conn_(conn), description_(std::move(description)) {}

  Status Collect(std::vector<Notice>* out) {
    while (PGnotify* n = PQnotifies(conn_)) {
      out->push_back({n->relname, n->extra != nullptr ? n->extra : ""});
      PQfreemem(n);
    }
    if (PQstatus(conn_) != CONNECTION_OK) return Lost("reading notices");
    return Status::Ok();
  }

  Status Lost(std::string_view doing) {
    return Status::Unavailable("lost the PostgreSQL connection to " + description_ +
                               " that listens for changes (" + std::string(doing) +
                               "): " + Trim(PQerrorMessage(conn_)) + "; it is opened again.");
  }

  PGconn* conn_;
  std::string description_;
};

}  // namespace

Result<std::unique_ptr<Database>> OpenPostgres(std::string_view url_view,
                                               const OpenOptions& options) {
  std::string url(url_view);
  std::string description = RedactPassword(url);
  SLIPWAY_ASSIGN_OR_RETURN(auto first, PostgresConnection::Open(url, description));
  ConnectionFactory factory = [url, description] {
    return PostgresConnection::Open(url, description);
  };
  NoticeConnector notices = [url, description] {
    return PostgresNoticeConnection::Open(url, description);
  };
  return std::unique_ptr<Database>(
      std::make_unique<PooledDatabase>(Dialect::kPostgres, description, std::move(factory),
                                       std::move(first), options, std::move(notices)));
}

}  // namespace slipway::db
