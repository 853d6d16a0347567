#include "ctrl/build/buildkit/connection.h"

#include <fmt/format.h>
#include <grpcpp/grpcpp.h>

#include <fstream>
#include <sstream>

namespace slipway::ctrl::build::buildkit {
namespace {

Result<std::string> ReadPem(const std::string& path, const char* setting) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Status::InvalidArgument(fmt::format("{} names \"{}\", which cannot be read", setting, path));
  }
  std::ostringstream out;
  out << in.rdbuf();
  std::string pem = out.str();
  if (pem.find("-----BEGIN ") == std::string::npos) {
    return Status::InvalidArgument(
        fmt::format("{} names \"{}\", which holds no PEM block", setting, path));
  }
  return pem;
}

}  // namespace

Result<BuildkitEndpoint> LoadEndpoint(const std::string& host, const std::string& ca_file,
                                      const std::string& cert_file, const std::string& key_file,
                                      const std::string& server_name) {
  BuildkitEndpoint e;
  e.host = host;
  e.tls_server_name = server_name;
  const int given = !ca_file.empty() + !cert_file.empty() + !key_file.empty();
  if (given != 0 && given != 3) {
    return Status::InvalidArgument(
        "mutual TLS to BuildKit needs all three of BUILDKIT_TLS_CA, BUILDKIT_TLS_CERT and "
        "BUILDKIT_TLS_KEY (or none of them)");
  }
  if (given == 3) {
    SLIPWAY_ASSIGN_OR_RETURN(e.tls_ca, ReadPem(ca_file, "BUILDKIT_TLS_CA"));
    SLIPWAY_ASSIGN_OR_RETURN(e.tls_cert, ReadPem(cert_file, "BUILDKIT_TLS_CERT"));
    SLIPWAY_ASSIGN_OR_RETURN(e.tls_key, ReadPem(key_file, "BUILDKIT_TLS_KEY"));
  }
  return e;
}

Result<std::shared_ptr<grpc::Channel>> Dial(const BuildkitEndpoint& e) {
  std::string target;
  const bool tls = !e.tls_ca.empty();
  if (e.host.rfind("unix://", 0) == 0) {
    if (tls) return Status::InvalidArgument("BuildKit TLS settings apply to tcp:// hosts, not " + e.host);
    target = "unix://" + e.host.substr(7);
  } else if (e.host.rfind("tcp://", 0) == 0) {
    target = e.host.substr(6);
    if (target.empty() || target.find(':') == std::string::npos) {
      return Status::InvalidArgument("BUILDKIT_HOST \"" + e.host + "\" needs a port (tcp://host:port)");
    }
  } else {
    return Status::InvalidArgument("BUILDKIT_HOST \"" + e.host +
                                   "\" is neither unix:///path nor tcp://host:port");
  }

  grpc::ChannelArguments args;
  // BuildKit puts stack traces into error metadata; grpc's 8 KiB default turns every daemon
  // error into an unreadable RST_STREAM.
  args.SetInt(GRPC_ARG_MAX_METADATA_SIZE, 4 << 20);
  args.SetMaxReceiveMessageSize(64 << 20);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 30000);
  // A daemon that restarts is retried quickly rather than after grpc's long default backoff.
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (tls) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = e.tls_ca;
    ssl.pem_cert_chain = e.tls_cert;
    ssl.pem_private_key = e.tls_key;
    creds = grpc::SslCredentials(ssl);
    std::string name = e.tls_server_name;
    if (name.empty()) name = target.substr(0, target.rfind(':'));
    args.SetSslTargetNameOverride(name);
  } else {
    creds = grpc::InsecureChannelCredentials();
  }
  return grpc::CreateCustomChannel(target, creds, args);
}

}  // namespace slipway::ctrl::build::buildkit
