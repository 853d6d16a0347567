#include "krane/kubernetes/kube_config.h"

#include <fmt/format.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>

namespace slipway::krane::kubernetes {
namespace {

namespace fs = std::filesystem;

std::string ReadWholeFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string Trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

Result<std::string> Base64Decode(const std::string& in, const std::string& what) {
  std::string clean;
  for (char c : in) {
    if (c != '\n' && c != '\r' && c != ' ') clean.push_back(c);
  }
  std::string out(clean.size() / 4 * 3 + 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(clean.data()),
                          static_cast<int>(clean.size()));
  if (n < 0) return Status::InvalidArgument(what + " is not valid base64");
  size_t pad = 0;
  if (!clean.empty() && clean.back() == '=') ++pad;
  if (clean.size() > 1 && clean[clean.size() - 2] == '=') ++pad;
  out.resize(static_cast<size_t>(n) - pad);
  return out;
}

// The private directory inline certificates are written to, made once per process.
Result<fs::path> InlineDir() {
  static std::mutex mu;
  static fs::path dir;
  std::lock_guard lock(mu);
  if (!dir.empty()) return dir;
  std::string tmpl = (fs::temp_directory_path() / "slipway-krane-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) {
    return Status::Internal("cannot create a private directory for the kubeconfig's certificates");
  }
  dir = tmpl;
  return dir;
}

Result<std::string> WriteInline(const std::string& name, const std::string& base64,
                                const std::string& what) {
  SLIPWAY_ASSIGN_OR_RETURN(std::string bytes, Base64Decode(base64, what));
  SLIPWAY_ASSIGN_OR_RETURN(fs::path dir, InlineDir());
  fs::path file = dir / name;
  {
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    out << bytes;
    if (!out) return Status::Internal("cannot write " + file.string());
  }
  ::chmod(file.c_str(), 0600);
  return file.string();
}

// An entry of a kubeconfig's named list ("clusters", "users", "contexts"): its inner map.
YAML::Node FindNamed(const YAML::Node& root, const char* list, const std::string& name,
                     const char* inner) {
  const YAML::Node items = root[list];
  if (!items || !items.IsSequence()) return YAML::Node();
  for (const auto& item : items) {
    if (item["name"] && item["name"].as<std::string>() == name) return item[inner];
  }
  return YAML::Node();
}

std::string StringAt(const YAML::Node& node, const char* key) {
  if (!node || !node.IsMap() || !node[key] || !node[key].IsScalar()) return "";
  return node[key].as<std::string>();
}

// A file path from a kubeconfig: relative paths are relative to the kubeconfig's directory.
std::string PathFrom(const fs::path& kubeconfig, const std::string& value) {
  if (value.empty() || fs::path(value).is_absolute()) return value;
  return (kubeconfig.parent_path() / value).string();
}

}  // namespace

Result<KubeConnection> LoadKubeconfig(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    return Status::FailedPrecondition(fmt::format(
        "the kubeconfig {} does not exist; pass --kubeconfig (KUBECONFIG) with the file that "
        "holds the cluster's address and krane's credentials",
        path));
  }
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const std::exception& e) {
    return Status::InvalidArgument(
        fmt::format("the kubeconfig {} is not valid YAML: {}", path, e.what()));
  }
  const std::string context_name = StringAt(root, "current-context");
  if (context_name.empty()) {
    return Status::InvalidArgument(fmt::format(
        "the kubeconfig {} has no current-context; set one (kubectl config use-context NAME)",
        path));
  }
  const YAML::Node context = FindNamed(root, "contexts", context_name, "context");
  if (!context.IsMap()) {
    return Status::InvalidArgument(fmt::format(
        "the kubeconfig {} names current-context \"{}\" but defines no context of that name", path,
        context_name));
  }
  const std::string cluster_name = StringAt(context, "cluster");
  const std::string user_name = StringAt(context, "user");
  const YAML::Node cluster = FindNamed(root, "clusters", cluster_name, "cluster");
  if (!cluster.IsMap()) {
    return Status::InvalidArgument(
        fmt::format("in the kubeconfig {}, context \"{}\" names cluster \"{}\", which the file "
                    "does not define",
                    path, context_name, cluster_name));
  }
  KubeConnection c;
  c.source = fmt::format("kubeconfig {} (context {})", path, context_name);
  c.server = StringAt(cluster, "server");
  while (!c.server.empty() && c.server.back() == '/') c.server.pop_back();
  if (c.server.empty()) {
    return Status::InvalidArgument(fmt::format(
        "in the kubeconfig {}, cluster \"{}\" has no server address", path, cluster_name));
  }
  c.default_namespace = StringAt(context, "namespace");
  c.insecure_skip_tls_verify = StringAt(cluster, "insecure-skip-tls-verify") == "true";
  c.ca_file = PathFrom(path, StringAt(cluster, "certificate-authority"));
  if (std::string data = StringAt(cluster, "certificate-authority-data"); !data.empty()) {
    SLIPWAY_ASSIGN_OR_RETURN(c.ca_file, WriteInline("ca.crt", data, "certificate-authority-data"));
  }
  const YAML::Node user = FindNamed(root, "users", user_name, "user");
  if (user.IsMap()) {
    c.client_cert_file = PathFrom(path, StringAt(user, "client-certificate"));
    c.client_key_file = PathFrom(path, StringAt(user, "client-key"));
    if (std::string d = StringAt(user, "client-certificate-data"); !d.empty()) {
      SLIPWAY_ASSIGN_OR_RETURN(c.client_cert_file,
                               WriteInline("client.crt", d, "client-certificate-data"));
    }
    if (std::string d = StringAt(user, "client-key-data"); !d.empty()) {
      SLIPWAY_ASSIGN_OR_RETURN(c.client_key_file, WriteInline("client.key", d, "client-key-data"));
    }
    c.token = StringAt(user, "token");
    c.token_file = PathFrom(path, StringAt(user, "tokenFile"));
    if (user["exec"] || user["auth-provider"]) {
      return Status::Unimplemented(fmt::format(
          "in the kubeconfig {}, user \"{}\" gets credentials from a plugin (exec or "
          "auth-provider), which krane does not run; give it a client certificate or a token",
          path, user_name));
    }
  }
  return c;
}

Result<KubeConnection> LoadInClusterConnection(const std::string& sa_dir) {
  const char* host = ::getenv("KUBERNETES_SERVICE_HOST");
  const char* port = ::getenv("KUBERNETES_SERVICE_PORT");
  if (host == nullptr || *host == '\0') {
    return Status::FailedPrecondition(
        "krane is not running in a Kubernetes pod (KUBERNETES_SERVICE_HOST is unset); pass "
        "--kubeconfig (KUBECONFIG) instead");
  }
  const fs::path dir(sa_dir);
  std::error_code ec;
  if (!fs::exists(dir / "token", ec)) {
    return Status::FailedPrecondition(
        fmt::format("krane runs in a pod but {} has no service account token; mount one "
                    "(automountServiceAccountToken: true)",
                    sa_dir));
  }
  KubeConnection c;
  std::string h = host;
  if (h.find(':') != std::string::npos) h = "[" + h + "]";  // IPv6
  c.server = fmt::format("https://{}:{}", h, port && *port ? port : "443");
  c.token_file = (dir / "token").string();
  c.ca_file = (dir / "ca.crt").string();
  c.default_namespace = Trimmed(ReadWholeFile(dir / "namespace"));
  c.source = "the pod's service account (" + sa_dir + ")";
  return c;
}

Result<KubeConnection> ResolveConnection(const std::string& kubeconfig) {
  if (!kubeconfig.empty()) {
    // KUBECONFIG may list several files; krane reads the first.
    return LoadKubeconfig(kubeconfig.substr(0, kubeconfig.find(':')));
  }
  if (const char* h = ::getenv("KUBERNETES_SERVICE_HOST"); h != nullptr && *h != '\0') {
    return LoadInClusterConnection();
  }
  if (const char* env = ::getenv("KUBECONFIG"); env != nullptr && *env != '\0') {
    std::string first(env);
    if (size_t colon = first.find(':'); colon != std::string::npos) first.resize(colon);
    return LoadKubeconfig(first);
  }
  const char* home = ::getenv("HOME");
  return LoadKubeconfig(fmt::format("{}/.kube/config", home ? home : ""));
}

}  // namespace slipway::krane::kubernetes
