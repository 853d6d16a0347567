// Reading a fuzzer's input as the pieces a target needs: a few selector bytes, then lines.
// Header-only; used by the fuzz/*_fuzz.cc targets and nothing else.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace slipway::fuzz {

class FuzzInput {
 public:
  FuzzInput(const uint8_t* data, size_t size)
      : rest_(reinterpret_cast<const char*>(data), size) {}

  // The next byte (0 once the input is used up).
  uint8_t Byte() {
    if (rest_.empty()) return 0;
    auto b = static_cast<uint8_t>(rest_.front());
    rest_.remove_prefix(1);
    return b;
  }

  // Up to the next '\n' (dropped), or everything left.
  std::string_view Line() {
    size_t nl = rest_.find('\n');
    std::string_view line = rest_.substr(0, nl);
    rest_.remove_prefix(nl == std::string_view::npos ? rest_.size() : nl + 1);
    return line;
  }

  // Up to the next occurrence of `separator` (dropped), or everything left.
  std::string_view Until(std::string_view separator) {
    size_t at = rest_.find(separator);
    std::string_view piece = rest_.substr(0, at);
    rest_.remove_prefix(at == std::string_view::npos ? rest_.size() : at + separator.size());
    return piece;
  }

  std::string_view Rest() {
    std::string_view all = rest_;
    rest_ = {};
    return all;
  }
  bool empty() const { return rest_.empty(); }

 private:
  std::string_view rest_;
};

// A finding the sanitizers would not see: a broken promise of the code under test.
#define SLIPWAY_FUZZ_CHECK(condition)                                                       \
  do {                                                                                      \
    if (!(condition)) {                                                                     \
      fprintf(stderr, "%s:%d: promise broken: %s\n", __FILE__, __LINE__, #condition);       \
      abort();                                                                              \
    }                                                                                       \
  } while (0)

}  // namespace slipway::fuzz
