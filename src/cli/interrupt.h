// Ctrl-C while a command works: the first SIGINT (or SIGTERM) asks the command to stop at its
// next wait, so it can say what becomes of the build or deployment it started (they go on in
// the control plane); a second one ends the process at once, as people expect of a second
// Ctrl-C. Async-signal-safe: the handler only sets a flag.
#pragma once

namespace slipway::cli {

// Installs the handler for SIGINT and SIGTERM. The CLI commands' entry points call it.
void CatchInterrupts();
// Whether an interrupt has arrived since CatchInterrupts.
bool Interrupted();

}  // namespace slipway::cli
