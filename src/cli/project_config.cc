#include "cli/project_config.h"

#include <fmt/format.h>

#include <toml++/toml.h>
#include <fstream>
#include <functional>
#include <sstream>
#include <system_error>

namespace slipway::cli {
namespace {

namespace fs = std::filesystem;

// "slipway.toml:3:12: <what>": where a node of the file is, as editors and compilers say it.
std::string At(const std::string& file, const toml::source_region& where, std::string_view what) {
  return fmt::format("{}:{}:{}: {}", file, where.begin.line, where.begin.column, what);
}

std::string_view TypeName(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a number with a fraction";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::date:
      return "a date";
    case toml::node_type::time:
      return "a time";
    case toml::node_type::date_time:
      return "a date-time";
    default:
      return "nothing";
  }
}

// Reads the keys of one table of the file into a ProjectConfig, refusing what it does not know.
class ConfigReader {
 public:
  ConfigReader(std::string file, ProjectConfig* out) : file_(std::move(file)), out_(out) {}

  Status ReadRoot(const toml::table& root) {
    for (auto&& [key, node] : root) {
      std::string_view k = key.str();
      if (k == "project") {
        SLIPWAY_RETURN_IF_ERROR(String(node, "project", &out_->project));
        SLIPWAY_RETURN_IF_ERROR(ProjectName(node, *out_->project));
      } else if (k == "build") {
        SLIPWAY_RETURN_IF_ERROR(
            Table(node, "build", [&](const toml::table& t) { return ReadBuild(t); }));
      } else if (k == "deploy") {
        SLIPWAY_RETURN_IF_ERROR(
            Table(node, "deploy", [&](const toml::table& t) { return ReadDeploy(t); }));
      } else {
        return Unknown(key, "", "project, [build], [deploy]");
      }
    }
    return Status::Ok();
  }

 private:
  Status ReadBuild(const toml::table& build) {
    for (auto&& [key, node] : build) {
      std::string_view k = key.str();
      if (k == "context") {
        SLIPWAY_RETURN_IF_ERROR(String(node, "build.context", &out_->context));
        SLIPWAY_RETURN_IF_ERROR(NonEmpty(node, "build.context", *out_->context));
      } else if (k == "dockerfile") {
        SLIPWAY_RETURN_IF_ERROR(String(node, "build.dockerfile", &out_->dockerfile));
        SLIPWAY_RETURN_IF_ERROR(NonEmpty(node, "build.dockerfile", *out_->dockerfile));
      } else if (k == "args") {
        SLIPWAY_RETURN_IF_ERROR(StringMap(node, "build.args", &out_->build_args));
      } else if (k == "platforms") {
        SLIPWAY_RETURN_IF_ERROR(Platforms(node, &out_->platforms));
      } else if (k == "no_cache") {
        const auto* v = node.as_boolean();
        if (v == nullptr) return WrongType(node, "build.no_cache", "true or false");
        out_->no_cache = v->get();
      } else if (k == "target") {
        SLIPWAY_RETURN_IF_ERROR(String(node, "build.target", &out_->target));
        SLIPWAY_RETURN_IF_ERROR(NonEmpty(node, "build.target", *out_->target));
      } else {
        return Unknown(key, "build", "context, dockerfile, args, platforms, target, no_cache");
      }
    }
    return Status::Ok();
  }

  Status ReadDeploy(const toml::table& deploy) {
    for (auto&& [key, node] : deploy) {
      std::string_view k = key.str();
      if (k == "environment") {
        SLIPWAY_RETURN_IF_ERROR(String(node, "deploy.environment", &out_->environment));
        SLIPWAY_RETURN_IF_ERROR(NonEmpty(node, "deploy.environment", *out_->environment));
      } else if (k == "branch") {
        SLIPWAY_RETURN_IF_ERROR(String(node, "deploy.branch", &out_->branch));
      } else if (k == "replicas") {
        SLIPWAY_RETURN_IF_ERROR(Integer(node, "deploy.replicas", 1, 100, &out_->replicas));
      } else if (k == "cpu") {
        SLIPWAY_RETURN_IF_ERROR(
            Integer(node, "deploy.cpu (millicores)", 1, 256000, &out_->cpu_millicores));
      } else if (k == "memory") {
        SLIPWAY_RETURN_IF_ERROR(
            Integer(node, "deploy.memory (MiB)", 4, 1 << 20, &out_->memory_mib));
      } else if (k == "port") {
        SLIPWAY_RETURN_IF_ERROR(Integer(node, "deploy.port", 1, 65535, &out_->port));
      } else if (k == "health_check_path") {
        SLIPWAY_RETURN_IF_ERROR(String(node, "deploy.health_check_path", &out_->health_check_path));
        if (out_->health_check_path->empty() || out_->health_check_path->front() != '/') {
          return Status::InvalidArgument(
              At(file_, node.source(),
                 fmt::format("deploy.health_check_path must be a path starting with '/', like "
                             "\"/healthz\", not \"{}\"",
                             *out_->health_check_path)));
        }
      } else if (k == "env") {
        SLIPWAY_RETURN_IF_ERROR(StringMap(node, "deploy.env", &out_->env));
      } else if (k == "fail_on_breaking") {
        const auto* b = node.as_boolean();
        if (b == nullptr) {
          return Status::InvalidArgument(
              At(file_, node.source(), "deploy.fail_on_breaking must be true or false"));
        }
        out_->fail_on_breaking = b->get();
      } else {
        return Unknown(key, "deploy",
                       "environment, branch, replicas, cpu, memory, port, health_check_path, env, "
                       "fail_on_breaking");
      }
    }
    return Status::Ok();
  }

  Status Unknown(const toml::key& key, std::string_view table, std::string_view known) {
    std::string where = table.empty() ? "at the top level" : fmt::format("in [{}]", table);
    return Status::InvalidArgument(
        At(file_, key.source(),
           fmt::format("unknown key \"{}\" {} (known keys: {})", key.str(), where, known)));
  }

  Status WrongType(const toml::node& node, std::string_view name, std::string_view wanted) {
    return Status::InvalidArgument(At(
        file_, node.source(), fmt::format("{} must be {}, not {}", name, wanted, TypeName(node))));
  }

  Status Table(const toml::node& node, std::string_view name,
               const std::function<Status(const toml::table&)>& read) {
    const toml::table* t = node.as_table();
    if (t == nullptr) return WrongType(node, name, fmt::format("a table ([{}])", name));
    return read(*t);
  }

  Status String(const toml::node& node, std::string_view name, std::optional<std::string>* out) {
    const auto* s = node.as_string();
    if (s == nullptr) return WrongType(node, name, "a string");
    *out = s->get();
    return Status::Ok();
  }

  // build.platforms: an array of "os/arch[/variant]" strings, kept as one comma list.
  Status Platforms(const toml::node& node, std::optional<std::string>* out) {
    const toml::array* a = node.as_array();
    if (a == nullptr || a->empty()) {
      return WrongType(node, "build.platforms", "a non-empty array of strings like \"linux/amd64\"");
    }
    std::string list;
    for (const auto& item : *a) {
      const auto* s = item.as_string();
      if (s == nullptr) return WrongType(item, "build.platforms", "an array of strings");
      Status st = ValidatePlatform(s->get(), "build.platforms");
      if (!st.ok()) return Status::InvalidArgument(At(file_, item.source(), st.message()));
      if (!list.empty()) list += ',';
      list += s->get();
    }
    *out = list;
    return Status::Ok();
  }

  Status NonEmpty(const toml::node& node, std::string_view name, const std::string& value) {
    if (!value.empty()) return Status::Ok();
    return Status::InvalidArgument(At(file_, node.source(), fmt::format("{} is empty", name)));
  }

  Status ProjectName(const toml::node& node, const std::string& name) {
    Status st = ValidateProjectName(name, "project");
    if (st.ok()) return st;
    return Status::InvalidArgument(At(file_, node.source(), st.message()));
  }

  Status Integer(const toml::node& node, std::string_view name, int64_t min, int64_t max,
                 std::optional<int>* out) {
    const auto* i = node.as_integer();
    if (i == nullptr) return WrongType(node, name, "an integer");
    int64_t v = i->get();
    if (v < min || v > max) {
      return Status::InvalidArgument(
          At(file_, node.source(),
             fmt::format("{} must be between {} and {}, not {}", name, min, max, v)));
    }
    *out = static_cast<int>(v);
    return Status::Ok();
  }

  // A table of strings; integers, numbers and booleans are taken as their TOML text, as people
  // write `PORT = 8080` in an env table.
  Status StringMap(const toml::node& node, std::string_view name,
                   std::map<std::string, std::string>* out) {
    const toml::table* t = node.as_table();
    if (t == nullptr) return WrongType(node, name, "a table of strings");
    for (auto&& [key, value] : *t) {
      std::string text;
      if (const auto* s = value.as_string()) {
        text = s->get();
      } else if (const auto* i = value.as_integer()) {
        text = std::to_string(i->get());
      } else if (const auto* f = value.as_floating_point()) {
        std::ostringstream os;
        os << *f;
        text = os.str();
      } else if (const auto* b = value.as_boolean()) {
        text = b->get() ? "true" : "false";
      } else {
        return WrongType(value, fmt::format("{}.{}", name, key.str()), "a string");
      }
      (*out)[std::string(key.str())] = std::move(text);
    }
    return Status::Ok();
  }

  std::string file_;
  ProjectConfig* out_;
};

bool IsNameChar(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

// Puts the value of one "KEY=VALUE" flag into a map, later flags winning.
Status MergeKeyValues(const std::vector<std::string>& texts, std::string_view flag,
                      std::map<std::string, std::string>* out) {
  for (const auto& text : texts) {
    SLIPWAY_ASSIGN_OR_RETURN(auto kv, ParseKeyValue(text, flag));
    (*out)[kv.first] = kv.second;
  }
  return Status::Ok();
}

template <typename T>
T Pick(const std::optional<T>& flag, const std::optional<T>& file, T fallback) {
  if (flag) return *flag;
  if (file) return *file;
  return fallback;
}

// Range checks of numeric flags, the same ranges as the file's.
Status CheckFlagRange(const std::optional<int>& v, std::string_view flag, int min, int max) {
  if (!v || (*v >= min && *v <= max)) return Status::Ok();
  return Status::InvalidArgument(
      fmt::format("{} must be between {} and {}, not {}", flag, min, max, *v));
}

}  // namespace

Result<ProjectConfig> ParseProjectConfig(std::string_view text, const std::string& file_name) {
  ProjectConfig config;
  toml::table root;
  try {
    root = toml::parse(text, file_name);
  } catch (const toml::parse_error& e) {
    return Status::InvalidArgument(At(file_name, e.source(), e.description()) +
                                   " (slipway.toml must be valid TOML: https://toml.io)");
  }
  ConfigReader reader(file_name, &config);
  SLIPWAY_RETURN_IF_ERROR(reader.ReadRoot(root));
  return config;
}

Result<ProjectConfig> LoadProjectConfig(const fs::path& dir) {
  fs::path file = dir / kProjectConfigFile;
  std::error_code ec;
  if (!fs::exists(file, ec)) return ProjectConfig{};
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    return Status::FailedPrecondition(
        fmt::format("cannot read {}: {} (check its permissions)", file.string(),
                    std::error_code(errno, std::generic_category()).message()));
  }
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return ParseProjectConfig(text, file.string());
}

Result<std::pair<std::string, std::string>> ParseKeyValue(std::string_view text,
                                                          std::string_view flag) {
  size_t eq = text.find('=');
  if (eq == std::string_view::npos || eq == 0) {
    return Status::InvalidArgument(
        fmt::format("{} \"{}\" must be KEY=VALUE (e.g. {} VERSION=1.2)", flag, text, flag));
  }
  return std::make_pair(std::string(text.substr(0, eq)), std::string(text.substr(eq + 1)));
}

Status ValidatePlatform(std::string_view platform, std::string_view origin) {
  // os/arch or os/arch/variant, each part [a-z0-9_.-]+.
  int parts = 1;
  bool part_empty = true;
  bool ok = !platform.empty();
  for (char c : platform) {
    if (c == '/') {
      ok = ok && !part_empty;
      ++parts;
      part_empty = true;
    } else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-') {
      part_empty = false;
    } else {
      ok = false;
    }
  }
  ok = ok && !part_empty && parts >= 2 && parts <= 3;
  if (ok) return Status::Ok();
  return Status::InvalidArgument(fmt::format(
      "{}: \"{}\" is not a platform; write os/arch or os/arch/variant, like linux/amd64 or "
      "linux/arm64/v8",
      origin, platform));
}

Status ValidateProjectName(std::string_view name, std::string_view origin) {
  bool ok = !name.empty() && name.size() <= 40 && name.front() != '-' && name.back() != '-';
  for (char c : name) ok = ok && (IsNameChar(c) || c == '-');
  if (ok) return Status::Ok();
  return Status::InvalidArgument(
      fmt::format("{} \"{}\" is not a valid project name: use 1-40 characters of a-z, 0-9 and "
                  "'-', not starting or ending with '-'",
                  origin, name));
}

Result<std::string> ProjectNameFromDirectory(std::string_view dir_name) {
  std::string name;
  for (char c : dir_name) {
    char lower = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    if (IsNameChar(lower)) {
      name += lower;
    } else if (!name.empty() && name.back() != '-') {
      name += '-';
    }
  }
  if (name.size() > 40) name.resize(40);
  while (!name.empty() && name.back() == '-') name.pop_back();
  if (name.empty()) {
    return Status::InvalidArgument(fmt::format(
        "cannot make a project name from the directory name \"{}\" (it has no letters or "
        "digits): set `project = \"my-app\"` in slipway.toml or pass --project my-app",
        dir_name));
  }
  return name;
}

Result<ProjectSettings> ResolveProjectSettings(const fs::path& dir, const ProjectConfig& config,
                                               const ProjectFlags& flags) {
  ProjectSettings s;
  std::error_code ec;
  s.dir = fs::weakly_canonical(fs::absolute(dir, ec), ec);
  if (ec || !fs::is_directory(s.dir)) {
    return Status::InvalidArgument(
        fmt::format("\"{}\" is not a directory: pass the directory of the project to build "
                    "(the one holding its Dockerfile)",
                    dir.string()));
  }

  if (flags.project) {
    SLIPWAY_RETURN_IF_ERROR(ValidateProjectName(*flags.project, "--project"));
    s.project = *flags.project;
  } else if (config.project) {
    s.project = *config.project;  // validated when the file was read
  } else {
    SLIPWAY_ASSIGN_OR_RETURN(s.project, ProjectNameFromDirectory(s.dir.filename().string()));
  }

  std::string context = Pick<std::string>(flags.context, config.context, ".");
  s.context_dir = fs::weakly_canonical(s.dir / context, ec);
  if (ec || !fs::is_directory(s.context_dir)) {
    return Status::InvalidArgument(
        fmt::format("the build context \"{}\" ({}) is not a directory in {}", context,
                    flags.context ? "--context" : "build.context in slipway.toml", s.dir.string()));
  }
  s.dockerfile = Pick<std::string>(flags.dockerfile, config.dockerfile, "Dockerfile");

  if (flags.platform) {
    size_t start = 0;
    const std::string& list = *flags.platform;
    do {
      size_t comma = list.find(',', start);
      std::string one = list.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      SLIPWAY_RETURN_IF_ERROR(ValidatePlatform(one, "--platform"));
      start = comma == std::string::npos ? list.size() + 1 : comma + 1;
    } while (start <= list.size());
  }
  s.platform = Pick<std::string>(flags.platform, config.platforms, "");
  s.target = Pick<std::string>(flags.target, config.target, "");
  s.no_cache = flags.no_cache || config.no_cache.value_or(false);
  if (flags.target && flags.target->empty()) {
    return Status::InvalidArgument("--target is empty: name a stage of the Dockerfile");
  }

  s.build_args = config.build_args;
  SLIPWAY_RETURN_IF_ERROR(MergeKeyValues(flags.build_args, "--build-arg", &s.build_args));
  s.env = config.env;
  SLIPWAY_RETURN_IF_ERROR(MergeKeyValues(flags.env, "--env", &s.env));

  SLIPWAY_RETURN_IF_ERROR(CheckFlagRange(flags.replicas, "--replicas", 1, 100));
  SLIPWAY_RETURN_IF_ERROR(CheckFlagRange(flags.cpu_millicores, "--cpu (millicores)", 1, 256000));
  SLIPWAY_RETURN_IF_ERROR(CheckFlagRange(flags.memory_mib, "--memory (MiB)", 4, 1 << 20));
  SLIPWAY_RETURN_IF_ERROR(CheckFlagRange(flags.port, "--port", 1, 65535));
  s.replicas = Pick(flags.replicas, config.replicas, 0);
  s.cpu_millicores = Pick(flags.cpu_millicores, config.cpu_millicores, 0);
  s.memory_mib = Pick(flags.memory_mib, config.memory_mib, 0);
  s.port = Pick(flags.port, config.port, 0);

  s.health_check_path = Pick<std::string>(flags.health_check_path, config.health_check_path, "");
  s.fail_on_breaking = config.fail_on_breaking.value_or(false);
  if (flags.health_check_path &&
      (flags.health_check_path->empty() || flags.health_check_path->front() != '/')) {
    return Status::InvalidArgument(fmt::format(
        "--health-check-path must be a path starting with '/', like /healthz, not \"{}\"",
        *flags.health_check_path));
  }
  s.environment = Pick<std::string>(flags.environment, config.environment, "");
  s.branch = Pick<std::string>(flags.branch, config.branch, "");
  return s;
}

}  // namespace slipway::cli
