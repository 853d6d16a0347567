// The PostgreSQL driver (libpq): a pool of connections, parameters sent separately from the
// SQL (never interpolated), SERIALIZABLE or READ COMMITTED transactions.
#pragma once

#include <memory>
#include <string_view>

#include "db/database.h"

namespace slipway::db {

// url is a libpq connection string: "postgresql://user@127.0.0.1:5432/db" or
// "host=/run/postgresql port=5432 dbname=db".
Result<std::unique_ptr<Database>> OpenPostgres(std::string_view url, const OpenOptions& options);

}  // namespace slipway::db
