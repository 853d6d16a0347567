// slipway.toml parsing: any text is a config or an InvalidArgument naming where it is wrong;
// never a crash, a hang, or another kind of error.
#include <cstdio>
#include <cstdlib>

#include "cli/project_config.h"
#include "fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace slipway;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto config = cli::ParseProjectConfig(text, "slipway.toml");
  if (!config.ok()) {
    SLIPWAY_FUZZ_CHECK(config.status().code() == Code::kInvalidArgument);
    SLIPWAY_FUZZ_CHECK(config.status().message().rfind("slipway.toml", 0) == 0);
    return 0;
  }
  // What a parsed file says must pass the checks the commands apply next, or fail them cleanly.
  if (config->project) (void)cli::ValidateProjectName(*config->project, "project");
  if (config->platforms) {
    std::string_view list = *config->platforms;
    size_t start = 0;
    while (start <= list.size()) {
      size_t comma = list.find(',', start);
      (void)cli::ValidatePlatform(list.substr(start, comma - start), "build.platforms");
      if (comma == std::string_view::npos) break;
      start = comma + 1;
    }
  }
  return 0;
}
