#include "ctrl/build/buildkit/session.h"

#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/server_posix.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <thread>

#include "base/crypto.h"
#include "moby/buildkit/v1/control.grpc.pb.h"
#include "moby/filesync/v1/auth.grpc.pb.h"

namespace slipway::ctrl::build::buildkit {
namespace {

namespace bk = moby::buildkit::v1;
namespace fs = moby::filesync::v1;

class AuthService final : public fs::Auth::Service {
 public:
  explicit AuthService(RegistryCredentials credentials) : credentials_(std::move(credentials)) {}

  grpc::Status Credentials(grpc::ServerContext*, const fs::CredentialsRequest* req,
                           fs::CredentialsResponse* resp) override {
    // An unknown host gets empty credentials: BuildKit then tries it anonymously.
    if (auto c = credentials_.For(req->host())) {
      resp->set_username(c->username);
      resp->set_secret(c->secret);
    }
    return grpc::Status::OK;
  }

 private:
  RegistryCredentials credentials_;
};

bool WriteAll(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

class SessionImpl final : public Session {
 public:
  SessionImpl(std::shared_ptr<grpc::Channel> channel, RegistryCredentials credentials)
      : id_(RandomHex(16)), stub_(bk::Control::NewStub(channel)), auth_(std::move(credentials)) {}

  ~SessionImpl() override {
    context_.TryCancel();
    if (local_fd_ >= 0) ::shutdown(local_fd_, SHUT_RDWR);
    if (from_daemon_.joinable()) from_daemon_.join();
    if (to_daemon_.joinable()) to_daemon_.join();
    if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
    if (local_fd_ >= 0) ::close(local_fd_);
  }

  const std::string& id() const override { return id_; }

  Status Start() {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
      return Status::Internal(fmt::format("socketpair for the BuildKit session: {}", strerror(errno)));
    }
    local_fd_ = fds[0];
    // grpc's end must not block, or its event loop stalls and health checks time out (the
    // daemon then drops the session: "no active session" after about 90 s).
    ::fcntl(fds[1], F_SETFL, ::fcntl(fds[1], F_GETFL) | O_NONBLOCK);

    grpc::EnableDefaultHealthCheckService(true);
    grpc::ServerBuilder builder;
    builder.RegisterService(&auth_);
    server_ = builder.BuildAndStart();
    if (!server_) {
      ::close(fds[1]);
      return Status::Internal("could not start the BuildKit session's gRPC server");
    }
    grpc::AddInsecureChannelFromFd(server_.get(), fds[1]);  // takes ownership of fds[1]

    context_.AddMetadata("x-docker-expose-session-uuid", id_);
    context_.AddMetadata("x-docker-expose-session-name", "slipway");
    context_.AddMetadata("x-docker-expose-session-sharedkey", id_);
    context_.AddMetadata("x-docker-expose-session-grpc-method", "/grpc.health.v1.Health/Check");
    context_.AddMetadata("x-docker-expose-session-grpc-method",
                         "/moby.filesync.v1.Auth/Credentials");
    stream_ = stub_->Session(&context_);

    from_daemon_ = std::thread([this] {
      bk::BytesMessage msg;
      while (stream_->Read(&msg)) {
        if (!WriteAll(local_fd_, msg.data())) break;
      }
      ::shutdown(local_fd_, SHUT_WR);
    });
    to_daemon_ = std::thread([this] {
      std::string buf(64 * 1024, '\0');
      bk::BytesMessage msg;
      for (;;) {
        ssize_t n = ::read(local_fd_, buf.data(), buf.size());
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        msg.set_data(buf.data(), static_cast<size_t>(n));
        if (!stream_->Write(msg)) break;
      }
      stream_->WritesDone();
    });
    return Status::Ok();
  }

 private:
  std::string id_;
  std::unique_ptr<bk::Control::Stub> stub_;
  AuthService auth_;
  std::unique_ptr<grpc::Server> server_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReaderWriter<bk::BytesMessage, bk::BytesMessage>> stream_;
  int local_fd_ = -1;
  std::thread from_daemon_;
  std::thread to_daemon_;
};

}  // namespace

Result<std::unique_ptr<Session>> Session::Attach(std::shared_ptr<grpc::Channel> channel,
                                                 RegistryCredentials credentials) {
  auto session = std::make_unique<SessionImpl>(std::move(channel), std::move(credentials));
  SLIPWAY_RETURN_IF_ERROR(session->Start());
  return std::unique_ptr<Session>(std::move(session));
}

}  // namespace slipway::ctrl::build::buildkit
