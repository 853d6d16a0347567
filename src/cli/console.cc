#include "cli/console.h"

#include <unistd.h>

#include <cstdlib>

namespace slipway::cli {

Console::Console(std::FILE* human, std::FILE* result, bool tty, std::FILE* errors)
    : human_(human), result_(result), errors_(errors), tty_(tty) {}

Console Console::ForProcess(bool json) {
  std::FILE* human = json ? stderr : stdout;
  // A terminal that cannot move the cursor (TERM=dumb: editors' shells) gets plain lines.
  const char* term = std::getenv("TERM");
  bool dumb = term != nullptr && std::string_view(term) == "dumb";
  return Console(human, stdout, isatty(fileno(human)) == 1 && !dumb);
}

void Console::Line(std::string_view text) {
  ClearStatusLine();
  std::fwrite(text.data(), 1, text.size(), human_);
  std::fputc('\n', human_);
  std::fflush(human_);
}

void Console::Error(std::string_view text) {
  ClearStatusLine();
  std::fprintf(errors_, "error: %.*s\n", static_cast<int>(text.size()), text.data());
  std::fflush(errors_);
}

void Console::StatusLine(std::string_view text) {
  if (!tty_) return;
  // Carriage return, the text, then "erase to end of line" for what a longer line left.
  std::fputc('\r', human_);
  std::fwrite(text.data(), 1, text.size(), human_);
  std::fputs("\x1b[K", human_);
  std::fflush(human_);
  status_shown_ = true;
}

void Console::ClearStatusLine() {
  if (!status_shown_) return;
  std::fputs("\r\x1b[K", human_);
  std::fflush(human_);
  status_shown_ = false;
}

void Console::Result(std::string_view json) {
  ClearStatusLine();
  std::fwrite(json.data(), 1, json.size(), result_);
  std::fputc('\n', result_);
  std::fflush(result_);
}

}  // namespace slipway::cli
