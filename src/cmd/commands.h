// Each subcommand of the slipway executable registers itself on the CLI11 app here.
// main.cc is the only place that knows every module; each Register* lives in its own file.
#pragma once

#include <cstdint>
#include <string>

namespace CLI {
class App;
}
namespace slipway::ctrl {
struct CtrlOptions;
}
namespace slipway::krane {
struct KraneBackendConfig;
}

namespace slipway::cmd {

// `slipway run s3`: the embedded S3-compatible object store (run_s3.cc).
void RegisterRunS3(CLI::App& run);
// `slipway run krane`: the krane service on a container backend (run_krane.cc).
void RegisterRunKrane(CLI::App& run);

// "5368709120", "64MiB", "5GiB", "10MB" into *out; an error sentence, or "" (run_s3.cc).
std::string ParseSize(const std::string& text, uint64_t* out);

// The docker krane backend's flags (log rotation), shared by `run krane` and `dev` the same
// way (krane_flags.cc).
void AddDockerKraneFlags(CLI::App& cmd, krane::KraneBackendConfig& config,
                         const std::string& prefix);

// The kubernetes krane backend's flags (and environment twins), shared by `run krane` and
// `dev`; prefix goes before each flag name but --kubeconfig ("krane-" in dev) (krane_flags.cc).
void AddKubernetesKraneFlags(CLI::App& cmd, krane::KraneBackendConfig& config,
                             const std::string& prefix);

// Where `run gateway` and `dev` serve the gateway's operational endpoints by default.
inline constexpr const char* kDefaultGatewayAdminListen = "127.0.0.1:8081";

// `slipway run gateway`: the gateway, routing by Host to deployments (run_gateway.cc).
void RegisterRunGateway(CLI::App& run);

// `slipway run ctrl`: the control plane (run_ctrl.cc).
void RegisterRunCtrl(CLI::App& run);
// The flags (and environment twins) of ctrl's options, shared by `run ctrl` and `dev`.
void AddCtrlFlags(CLI::App& cmd, ctrl::CtrlOptions& options);

// Where the embedded stack keeps its data by default: $XDG_DATA_HOME/slipway, else
// ~/.local/share/slipway (dev.cc). `run s3` keeps its buckets under <that>/s3, as dev does.
std::string DefaultDataDir();

// `slipway dev`: the whole stack in one process on embedded defaults (dev.cc).
void RegisterDev(CLI::App& app);

// `slipway build|deploy|status|list`: the user-facing CLI (cli_commands.cc).
void RegisterCliCommands(CLI::App& app);

// `slipway s3 presign|mb`: operator tools for an S3-compatible store (s3_tools.cc).
void RegisterS3Tools(CLI::App& app);

}  // namespace slipway::cmd
