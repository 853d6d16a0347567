#include "db/database.h"

#include <charconv>
#include <cstdio>
#include <cstdlib>

#include "db/connection.h"
#include "db/postgres/postgres_driver.h"
#include "db/sqlite/sqlite_driver.h"

namespace slipway::db {

std::string_view DialectName(Dialect dialect) {
  return dialect == Dialect::kSqlite ? "sqlite" : "postgres";
}

int64_t Value::AsInt() const {
  switch (type()) {
    case Type::kNull:
      return 0;
    case Type::kInt:
      return std::get<int64_t>(v_);
    case Type::kDouble:
      return static_cast<int64_t>(std::get<double>(v_));
    case Type::kText: {
      const auto& s = std::get<std::string>(v_);
      int64_t v = 0;
      auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
      if (ec == std::errc() && p == s.data() + s.size()) return v;
      return static_cast<int64_t>(std::strtod(s.c_str(), nullptr));
    }
    case Type::kBlob:
      return 0;
  }
  return 0;
}

double Value::AsDouble() const {
  switch (type()) {
    case Type::kNull:
      return 0;
    case Type::kInt:
      return static_cast<double>(std::get<int64_t>(v_));
    case Type::kDouble:
      return std::get<double>(v_);
    case Type::kText:
      return std::strtod(std::get<std::string>(v_).c_str(), nullptr);
    case Type::kBlob:
      return 0;
  }
  return 0;
}

std::string Value::AsText() const {
  switch (type()) {
    case Type::kNull:
      return "";
    case Type::kInt:
      return std::to_string(std::get<int64_t>(v_));
    case Type::kDouble: {
      char buf[32];
      auto [p, ec] = std::to_chars(buf, buf + sizeof buf, std::get<double>(v_));
      return std::string(buf, p);
    }
    case Type::kText:
      return std::get<std::string>(v_);
    case Type::kBlob:
      return std::get<Blob>(v_).bytes;
  }
  return "";
}

std::optional<std::string> Value::AsOptionalText() const {
  if (is_null()) return std::nullopt;
  return AsText();
}

std::optional<int64_t> Value::AsOptionalInt() const {
  if (is_null()) return std::nullopt;
  return AsInt();
}

std::string_view Value::bytes() const {
  if (type() == Type::kText) return std::get<std::string>(v_);
  if (type() == Type::kBlob) return std::get<Blob>(v_).bytes;
  return {};
}

std::optional<size_t> Row::ColumnIndex(std::string_view name) const {
  for (size_t i = 0; i < columns_->size(); ++i) {
    if ((*columns_)[i] == name) return i;
  }
  return std::nullopt;
}

const Value& Row::operator[](std::string_view name) const {
  auto i = ColumnIndex(name);
  if (!i) {
    std::fprintf(stderr,
                 "slipway: a query result has no column \"%.*s\" (a bug in the query's caller)\n",
                 static_cast<int>(name.size()), name.data());
    std::abort();
  }
  return values_[*i];
}

Result<std::optional<Row>> Executor::QueryRow(std::string_view sql, const Params& params) {
  SLIPWAY_ASSIGN_OR_RETURN(Rows rows, Query(sql, params));
  if (rows.empty()) return std::optional<Row>();
  if (rows.size() > 1) {
    return Status::Internal("the query returned " + std::to_string(rows.size()) +
                            " rows where at most one was expected: " + AbbreviateSql(sql));
  }
  return std::optional<Row>(std::move(rows.front()));
}

std::string AbbreviateSql(std::string_view sql) {
  size_t start = sql.find_first_not_of(" \t\r\n");
  if (start == std::string_view::npos) return "";
  sql.remove_prefix(start);
  std::string out;
  bool space = false;
  for (char c : sql) {
    if (c == ' ' || c == '\n' || c == '\t' || c == '\r') {
      space = true;
      continue;
    }
    if (space && !out.empty()) out += ' ';
    space = false;
    out += c;
    if (out.size() >= 120) return out + "...";
  }
  return out;
}

namespace {

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// "host=/tmp/x port=5432": libpq's keyword=value form starts with a keyword and '='.
bool LooksLikeConninfo(std::string_view url) {
  size_t eq = url.find('=');
  if (eq == std::string_view::npos || eq == 0) return false;
  for (char c : url.substr(0, eq)) {
    if (!(c == '_' || (c >= 'a' && c <= 'z'))) return false;
  }
  return true;
}

}  // namespace

Result<std::unique_ptr<Database>> Open(std::string_view url, const OpenOptions& options) {
  if (url.empty()) {
    return Status::InvalidArgument(
        "no database given: pass a file path, sqlite:///path/to/main.db or "
        "postgresql://user@host:5432/db.");
  }
  if (StartsWith(url, "postgresql://") || StartsWith(url, "postgres://") ||
      LooksLikeConninfo(url)) {
    return OpenPostgres(url, options);
  }
  if (StartsWith(url, "sqlite://")) return OpenSqlite(url.substr(9), options);
  if (StartsWith(url, "sqlite:")) return OpenSqlite(url.substr(7), options);
  if (size_t colon = url.find("://"); colon != std::string_view::npos) {
    return Status::InvalidArgument("unsupported database URL scheme \"" +
                                   std::string(url.substr(0, colon)) +
                                   "\": use a file path, sqlite:///path/to/main.db or "
                                   "postgresql://user@host:5432/db.");
  }
  return OpenSqlite(url, options);
}

}  // namespace slipway::db
