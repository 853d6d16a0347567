// Where the CLI's words go. Human output goes to stdout, or to stderr when the command's result
// is printed as JSON (--json), so `slipway build --json | jq` sees exactly one JSON object.
// On a terminal, one "status line" may sit below the output and be rewritten in place
// (upload progress, the running deployment step); printing a line clears it first. Not
// thread-safe: one command, one thread.
#pragma once

#include <cstdio>
#include <string>
#include <string_view>

namespace slipway::cli {

class Console {
 public:
  // human: where human output goes; result: where Result() writes; tty: whether `human` is a
  // terminal (status lines are drawn only there); errors: where Error() writes.
  Console(std::FILE* human, std::FILE* result, bool tty, std::FILE* errors = stderr);
  // stdout/stderr as the process has them; human output to stderr when json is set.
  static Console ForProcess(bool json);

  // One line of human output (a trailing newline is added).
  void Line(std::string_view text);
  // An error for a person: "error: <text>" on the error stream (stderr), also with --json.
  void Error(std::string_view text);
  // Replaces the status line (terminals only; ignored otherwise).
  void StatusLine(std::string_view text);
  // Removes the status line, if any.
  void ClearStatusLine();
  // The command's machine-readable result (one line, to `result`).
  void Result(std::string_view json);

  bool tty() const { return tty_; }

 private:
  std::FILE* human_;
  std::FILE* result_;
  std::FILE* errors_;
  bool tty_;
  bool status_shown_ = false;
};

}  // namespace slipway::cli
