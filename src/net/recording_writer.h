// A ResponseWriter that passes every call on to another and remembers what went out: the
// status and the body bytes. For servers that count their responses (metrics, access logs).
#pragma once

#include <cstdint>

#include "net/http_server.h"

namespace slipway::net {

class RecordingWriter final : public ResponseWriter {
 public:
  explicit RecordingWriter(ResponseWriter& inner) : inner_(inner) {}

  Status WriteHead(int status, const Headers& headers,
                   std::optional<uint64_t> content_length) override {
    status_ = status;
    return inner_.WriteHead(status, headers, content_length);
  }
  Status Write(std::string_view data) override {
    body_bytes_ += data.size();
    return inner_.Write(data);
  }
  // Passed on as a file, so the connection can still use sendfile(2) (the default would read
  // the file through a buffer and call Write).
  Status WriteFile(int fd, uint64_t offset, uint64_t length) override {
    SLIPWAY_RETURN_IF_ERROR(inner_.WriteFile(fd, offset, length));
    body_bytes_ += length;
    return Status::Ok();
  }
  Status Finish() override { return inner_.Finish(); }
  bool head_written() const override { return inner_.head_written(); }
  void Abort() override {
    aborted_ = true;
    inner_.Abort();
  }
  bool Abandoned() const override { return inner_.Abandoned(); }
  Result<UpgradedConnection*> Upgrade(const Headers& headers) override {
    status_ = 101;
    return inner_.Upgrade(headers);
  }

  // 0 until a head was written.
  int status() const { return status_; }
  // Body bytes handed to the connection (none for HEAD, whatever the handler wrote).
  uint64_t body_bytes() const { return body_bytes_; }
  bool aborted() const { return aborted_; }

 private:
  ResponseWriter& inner_;
  int status_ = 0;
  uint64_t body_bytes_ = 0;
  bool aborted_ = false;
};

}  // namespace slipway::net
