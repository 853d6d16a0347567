#include "base/status.h"

#include <array>

namespace slipway {
namespace {

constexpr std::array<std::string_view, 17> kNames = {
    "ok",        "canceled",          "unknown",            "invalid_argument",
    "deadline_exceeded", "not_found",  "already_exists",     "permission_denied",
    "resource_exhausted", "failed_precondition", "aborted", "out_of_range",
    "unimplemented", "internal",      "unavailable",        "data_loss",
    "unauthenticated",
};

}  // namespace

std::string_view CodeName(Code code) { return kNames[static_cast<size_t>(code)]; }

Code CodeFromName(std::string_view name) {
  for (size_t i = 0; i < kNames.size(); ++i) {
    if (kNames[i] == name) return static_cast<Code>(i);
  }
  return Code::kUnknown;
}

std::string Status::ToString() const {
  if (ok()) return "ok";
  std::string out(CodeName(code_));
  out += ": ";
  out += message_;
  return out;
}

Status Status::WithContext(std::string_view context) const {
  if (ok()) return *this;
  std::string m(context);
  m += ": ";
  m += message_;
  return Status(code_, std::move(m));
}

}  // namespace slipway
