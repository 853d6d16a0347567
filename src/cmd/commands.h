// Each subcommand of the slipway executable registers itself on the CLI11 app here.
// main.cc is the only place that knows every module; each Register* lives in its own file.
#pragma once

namespace CLI {
class App;
}

namespace slipway::cmd {

// `slipway run s3`: the embedded S3-compatible object store (run_s3.cc).
void RegisterRunS3(CLI::App& run);

}  // namespace slipway::cmd
