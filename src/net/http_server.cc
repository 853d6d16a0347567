// HttpServer: an acceptor thread plus one thread per connection, doing blocking I/O.
//
// Beast parses requests and serializes response heads, but never touches a socket: it reads
// and writes through SocketStream, which bounds every wait with poll() and the configured
// timeout (Asio's own synchronous socket calls wait forever and ignore SO_RCVTIMEO).
//
// Shutdown coordination: a connection is either idle (waiting for the first byte of its next
// request), busy (a request is being read, handled or answered), or closing. Shutdown closes
// idle connections at once, waits up to the grace period for busy ones, then shuts down every
// socket that is left. Sockets are only ever ::shutdown() from other threads, never
// ::close()d, so a file descriptor is never reused under a thread that still uses it.
// Asio recycles coroutine frames per thread; a request nests about a dozen, so keep that many
// (the default, 2, sends most of them to malloc). Every file that includes Asio defines it alike.
#define BOOST_ASIO_RECYCLING_ALLOCATOR_CACHE_SIZE 16
#include "net/http_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/buffer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <cerrno>
#include <charconv>
#include <climits>
#include <condition_variable>
#include <cstring>
#include <exception>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace slipway::net {

// ----- BodyReader / ResponseWriter conveniences -------------------------------------------

Result<std::string> BodyReader::ReadAll(size_t limit) {
  std::string out;
  constexpr size_t kChunk = 64 * 1024;
  for (;;) {
    // Read at most one byte past the limit, so an over-limit body is detected without
    // buffering more than limit + 1 bytes.
    size_t room = limit - std::min(limit, out.size()) + 1;
    size_t want = std::min(kChunk, room);
    size_t old_size = out.size();
    out.resize(old_size + want);
    auto n = Read(out.data() + old_size, want);
    if (!n.ok()) return n.status();
    out.resize(old_size + *n);
    if (*n == 0) return out;
    if (out.size() > limit) {
      return Status::ResourceExhausted(fmt::format(
          "the request body is larger than the {} bytes accepted here; send a smaller body",
          limit));
    }
  }
}

Status ResponseWriter::WriteFile(int fd, uint64_t offset, uint64_t length) {
  constexpr size_t kChunk = 1 << 20;
  std::vector<char> buf(static_cast<size_t>(std::min<uint64_t>(length, kChunk)));
  while (length > 0) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(length, buf.size()));
    ssize_t n = ::pread(fd, buf.data(), want, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::Internal(fmt::format("reading the file to send failed: {}", std::strerror(errno)));
    if (n == 0) return Status::DataLoss("the file to send ended before the length given");
    SLIPWAY_RETURN_IF_ERROR(Write(std::string_view(buf.data(), static_cast<size_t>(n))));
    offset += static_cast<uint64_t>(n);
    length -= static_cast<uint64_t>(n);
  }
  return Status::Ok();
}

Status ResponseWriter::Send(int status, const Headers& headers, std::string_view body) {
  SLIPWAY_RETURN_IF_ERROR(WriteHead(status, headers, body.size()));
  SLIPWAY_RETURN_IF_ERROR(Write(body));
  return Finish();
}

// ----- termination signals -----------------------------------------------------------------

namespace {

sigset_t TerminationSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return set;
}

}  // namespace

void BlockTerminationSignals() {
  sigset_t set = TerminationSignals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

int WaitForTerminationSignal() {
  sigset_t set = TerminationSignals();
  // sigwait only receives signals that are blocked; blocking them here makes the call correct
  // even when BlockTerminationSignals() was not called in this thread.
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  int sig = 0;
  while (sigwait(&set, &sig) != 0) {
  }
  return sig;
}

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using boost::system::error_code;
using Millis = std::chrono::milliseconds;
using SteadyClock = std::chrono::steady_clock;

// poll() on one descriptor, restarted on EINTR with the remaining time. Returns the revents
// (non-zero when ready), 0 on timeout, -1 with errno on failure. timeout < 0 waits forever.
int PollOne(int fd, short events, Millis timeout) {
  auto deadline = SteadyClock::now() + timeout;
  for (;;) {
    int wait_ms = -1;
    if (timeout.count() >= 0) {
      auto left = std::chrono::duration_cast<Millis>(deadline - SteadyClock::now()).count();
      wait_ms = static_cast<int>(std::clamp<int64_t>(left, 0, INT_MAX));
    }
    pollfd p{fd, events, 0};
    int r = ::poll(&p, 1, wait_ms);
    if (r > 0) return p.revents;
    if (r == 0) return 0;
    if (errno != EINTR) return -1;
  }
}

error_code ErrnoCode(int err) { return error_code(err, boost::system::system_category()); }

// A connected, non-blocking socket as a Beast SyncReadStream / SyncWriteStream whose every
// wait is bounded by the read or write timeout (beast::error::timeout when it runs out).
class SocketStream {
 public:
  SocketStream(int fd, Millis read_timeout, Millis write_timeout)
      : fd_(fd), read_timeout_(read_timeout), write_timeout_(write_timeout) {}

  template <class MutableBufferSequence>
  size_t read_some(const MutableBufferSequence& buffers) {
    error_code ec;
    size_t n = read_some(buffers, ec);
    if (ec) throw boost::system::system_error(ec);
    return n;
  }

  template <class MutableBufferSequence>
  size_t read_some(const MutableBufferSequence& buffers, error_code& ec) {
    for (auto it = asio::buffer_sequence_begin(buffers); it != asio::buffer_sequence_end(buffers);
         ++it) {
      asio::mutable_buffer b = *it;
      if (b.size() > 0) return Recv(b.data(), b.size(), ec);
    }
    ec = {};
    return 0;
  }

  template <class ConstBufferSequence>
  size_t write_some(const ConstBufferSequence& buffers) {
    error_code ec;
    size_t n = write_some(buffers, ec);
    if (ec) throw boost::system::system_error(ec);
    return n;
  }

  template <class ConstBufferSequence>
  size_t write_some(const ConstBufferSequence& buffers, error_code& ec) {
    iovec iov[16];
    size_t count = 0;
    for (auto it = asio::buffer_sequence_begin(buffers);
         it != asio::buffer_sequence_end(buffers) && count < std::size(iov); ++it) {
      asio::const_buffer b = *it;
      if (b.size() == 0) continue;
      iov[count].iov_base = const_cast<void*>(b.data());
      iov[count].iov_len = b.size();
      ++count;
    }
    ec = {};
    if (count == 0) return 0;
    return Send(iov, count, ec);
  }

  int fd() const { return fd_; }

  // True when the peer has closed the connection (or it failed), without consuming any byte
  // it sent: bytes of a next request wait in the socket and are not a close.
  bool PeerClosed() const {
    int revents = PollOne(fd_, POLLIN | POLLRDHUP, Millis(0));
    if (revents < 0) return true;
    if (revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) return true;
    if (!(revents & POLLIN)) return false;
    char byte;
    ssize_t n = ::recv(fd_, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
  }

  // sendfile(2) from in_fd at *offset to the socket: the file's pages go to the socket without
  // passing through user space. Returns the bytes sent (advancing *offset), 0 with ec set on
  // failure or timeout.
  size_t SendFile(int in_fd, off_t* offset, size_t n, error_code& ec) {
    for (;;) {
      ssize_t sent = ::sendfile(fd_, in_fd, offset, n);
      if (sent >= 0) {
        ec = sent == 0 ? asio::error::eof : error_code();
        return static_cast<size_t>(sent);
      }
      if (!ReadyToRetry(POLLOUT, write_timeout_, ec)) return 0;
    }
  }

  // Waits up to timeout for bytes, end of stream or an error to arrive; false on timeout.
  bool WaitReadable(Millis timeout) { return PollOne(fd_, POLLIN, timeout) != 0; }

  // Discards incoming bytes until the peer closes, max_bytes are gone or timeout passes.
  // Used before closing a connection whose request was not read to the end: closing with
  // unread bytes makes the kernel send RST, which can destroy the response we just sent
  // before the client reads it.
  void Drain(size_t max_bytes, Millis timeout) {
    auto deadline = SteadyClock::now() + timeout;
    char sink[16 * 1024];
    size_t drained = 0;
    while (drained < max_bytes) {
      auto left = std::chrono::duration_cast<Millis>(deadline - SteadyClock::now());
      if (left.count() <= 0) return;
      ssize_t n = ::recv(fd_, sink, sizeof(sink), 0);
      if (n == 0) return;
      if (n > 0) {
        drained += static_cast<size_t>(n);
        continue;
      }
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) return;
      if (PollOne(fd_, POLLIN, left) <= 0) return;
    }
  }

 private:
  size_t Recv(void* data, size_t size, error_code& ec) {
    for (;;) {
      ssize_t n = ::recv(fd_, data, size, 0);
      if (n > 0) {
        ec = {};
        return static_cast<size_t>(n);
      }
      if (n == 0) {
        ec = asio::error::eof;
        return 0;
      }
      if (!ReadyToRetry(POLLIN, read_timeout_, ec)) return 0;
    }
  }

  size_t Send(iovec* iov, size_t count, error_code& ec) {
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = count;
    for (;;) {
      ssize_t n = ::sendmsg(fd_, &msg, MSG_NOSIGNAL);
      if (n >= 0) {
        ec = {};
        return static_cast<size_t>(n);
      }
      if (!ReadyToRetry(POLLOUT, write_timeout_, ec)) return 0;
    }
  }

  // After a call on the non-blocking socket failed (errno set): true to call again (EINTR, or
  // the socket became ready within timeout); false with ec set (a real error, or the timeout).
  bool ReadyToRetry(short events, Millis timeout, error_code& ec) {
    if (errno == EINTR) return true;
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      ec = ErrnoCode(errno);
      return false;
    }
    int r = PollOne(fd_, events, timeout);
    if (r == 0) {
      ec = beast::error::timeout;
      return false;
    }
    if (r < 0) {
      ec = ErrnoCode(errno);
      return false;
    }
    return true;
  }

  int fd_;
  Millis read_timeout_;
  Millis write_timeout_;
};

using RequestParser = http::request_parser<http::buffer_body>;

// The body of one request, pulled through the parser on demand into the handler's buffer.
class ConnectionBodyReader final : public BodyReader {
 public:
  ConnectionBodyReader(SocketStream& stream, beast::flat_buffer& buffer, RequestParser& parser,
                       bool continue_pending, const std::string& remote, uint64_t max_body_bytes,
                       Millis read_timeout)
      : stream_(stream),
        buffer_(buffer),
        parser_(parser),
        continue_pending_(continue_pending),
        remote_(remote),
        max_body_bytes_(max_body_bytes),
        read_timeout_(read_timeout) {
    // A body framed by Content-Length (the parser has checked it against the body limit) is
    // read straight from the socket into the handler's buffer: one recv() as large as the
    // handler asks for, no copy through the parser. Chunked bodies go through Beast's parser,
    // with room in its buffer for large reads (Beast reads no more than the room it finds).
    if (!parser_.is_done() && !parser_.chunked() && parser_.content_length()) {
      direct_remaining_ = *parser_.content_length();
    } else if (!parser_.is_done()) {
      buffer_.reserve(kChunkedReadBytes);
    }
  }

  // Whether the whole body has been read (a request without a body is done at once).
  bool done() const { return direct_remaining_ ? *direct_remaining_ == 0 : parser_.is_done(); }

  Result<size_t> Read(char* buf, size_t n) override {
    if (!failure_.ok()) return failure_;
    if (done()) return size_t{0};
    if (n == 0) {
      return Status::InvalidArgument(
          "BodyReader::Read was given an empty buffer; pass room for at least one byte");
    }
    if (continue_pending_) {
      // The client waits for this before sending the body (RFC 9110, 10.1.1).
      continue_pending_ = false;
      static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      error_code ec;
      asio::write(stream_, asio::buffer(kContinue.data(), kContinue.size()), ec);
      if (ec) return Fail(ec);
    }
    if (direct_remaining_) return ReadDirect(buf, n);
    auto& body = parser_.get().body();
    size_t got = 0;
    while (got == 0 && !parser_.is_done()) {
      body.data = buf;
      body.size = n;
      error_code ec;
      http::read_some(stream_, buffer_, parser_, ec);
      if (ec == http::error::need_buffer) ec = {};
      got = n - body.size;
      // The parser must never hold on to the handler's buffer between calls.
      body.data = nullptr;
      body.size = 0;
      if (ec) return Fail(ec);
    }
    bytes_read_ += got;
    return got;
  }

  uint64_t bytes_read() const override { return bytes_read_; }
  bool failed() const { return !failure_.ok(); }

 private:
  static constexpr size_t kChunkedReadBytes = 64 * 1024;

  // Content-Length bodies: first the bytes that arrived with the header, then the socket.
  Result<size_t> ReadDirect(char* buf, size_t n) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(n, *direct_remaining_));
    size_t got = 0;
    if (buffer_.size() > 0) {
      got = std::min(want, buffer_.size());
      std::memcpy(buf, buffer_.cdata().data(), got);
      buffer_.consume(got);
    } else {
      error_code ec;
      got = stream_.read_some(asio::mutable_buffer(buf, want), ec);
      if (ec) return Fail(ec);
    }
    *direct_remaining_ -= got;
    bytes_read_ += got;
    return got;
  }

  Status Fail(const error_code& ec) {
    if (ec == beast::error::timeout) {
      failure_ = Status::DeadlineExceeded(fmt::format(
          "the client at {} sent nothing for {} ms in the middle of the request body; the "
          "connection will be closed",
          remote_, read_timeout_.count()));
    } else if (ec == http::error::body_limit) {
      failure_ = Status::ResourceExhausted(fmt::format(
          "the request body is larger than the server's limit of {} bytes; send a smaller body",
          max_body_bytes_));
    } else if (ec == http::error::partial_message || ec == asio::error::eof ||
               ec == http::error::end_of_stream) {
      failure_ = Status::Unavailable(fmt::format(
          "the client at {} closed the connection before the request body was complete", remote_));
    } else if (ec.category() == http::make_error_code(http::error::bad_chunk).category()) {
      failure_ = Status::InvalidArgument(fmt::format(
          "the request body from {} is malformed ({}); the client must send valid chunked "
          "encoding",
          remote_, ec.message()));
    } else {
      failure_ = Status::Unavailable(
          fmt::format("reading the request body from {} failed: {}; the client may have gone away",
                      remote_, ec.message()));
    }
    return failure_;
  }

  SocketStream& stream_;
  beast::flat_buffer& buffer_;
  RequestParser& parser_;
  bool continue_pending_;
  const std::string& remote_;
  uint64_t max_body_bytes_;
  Millis read_timeout_;
  std::optional<uint64_t> direct_remaining_;  // set for Content-Length bodies
  uint64_t bytes_read_ = 0;
  Status failure_;
};

bool HasControlCharacters(std::string_view s) {
  return std::any_of(s.begin(), s.end(),
                     [](char c) { return c == '\r' || c == '\n' || c == '\0'; });
}

// Whether a comma-separated Connection header value holds the token "close".
bool HasCloseToken(std::string_view value) {
  size_t pos = 0;
  while (pos <= value.size()) {
    size_t comma = value.find(',', pos);
    std::string_view token =
        value.substr(pos, comma == std::string_view::npos ? value.npos : comma - pos);
    while (!token.empty() && (token.front() == ' ' || token.front() == '\t'))
      token.remove_prefix(1);
    while (!token.empty() && (token.back() == ' ' || token.back() == '\t')) token.remove_suffix(1);
    if (EqualsIgnoreCase(token, "close")) return true;
    if (comma == std::string_view::npos) break;
    pos = comma + 1;
  }
  return false;
}

// The connection after "101 Switching Protocols". Bytes the client sent right after its
// request head (already in the parser's buffer) come first.
class ConnectionUpgrade final : public UpgradedConnection {
 public:
  ConnectionUpgrade(SocketStream& stream, beast::flat_buffer& buffer, const std::string& remote)
      : stream_(stream), buffer_(buffer), remote_(remote) {}

  Result<size_t> Read(char* buf, size_t n) override {
    if (n == 0) return size_t{0};
    if (buffer_.size() > 0) {
      size_t take = std::min(n, buffer_.size());
      std::memcpy(buf, buffer_.cdata().data(), take);
      buffer_.consume(take);
      return take;
    }
    for (;;) {
      ssize_t got = ::recv(stream_.fd(), buf, n, 0);
      if (got > 0) return static_cast<size_t>(got);
      if (got == 0) return size_t{0};
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        if (PollOne(stream_.fd(), POLLIN, Millis(-1)) < 0) return size_t{0};
        continue;
      }
      if (errno == ECONNRESET || errno == ENOTCONN || errno == EPIPE) return size_t{0};
      return Status::Unavailable(fmt::format(
          "reading from the upgraded connection of {} failed: {}", remote_, std::strerror(errno)));
    }
  }

  Status Write(std::string_view data) override {
    error_code ec;
    asio::write(stream_, asio::const_buffer(data.data(), data.size()), ec);
    if (ec) {
      return Status::Unavailable(fmt::format(
          "writing to the upgraded connection of {} failed ({}); the client may have gone away",
          remote_, ec == beast::error::timeout ? "write timeout" : ec.message()));
    }
    return Status::Ok();
  }

  void Close() override { ::shutdown(stream_.fd(), SHUT_RDWR); }

 private:
  SocketStream& stream_;
  beast::flat_buffer& buffer_;
  const std::string& remote_;
};

// The response to one request. Framing (Content-Length, chunked, Connection) is the server's:
// the handler's values for those fields are replaced, except that its `Connection: close` is
// honoured.
class ConnectionResponseWriter final : public ResponseWriter {
 public:
  struct RequestFacts {
    bool head = false;
    unsigned version = 11;
    // False when the connection must close after this response whatever the handler does
    // (client asked for it, HTTP/1.0 without keep-alive, server shutting down).
    bool may_keep_alive = true;
  };

  ConnectionResponseWriter(SocketStream& stream, beast::flat_buffer& buffer, RequestFacts facts,
                           const ConnectionBodyReader& body, std::function<bool()> stopping,
                           const std::string& remote)
      : stream_(stream),
        buffer_(buffer),
        facts_(facts),
        body_(body),
        stopping_(std::move(stopping)),
        remote_(remote) {}

  Status WriteHead(int status, const Headers& headers,
                   std::optional<uint64_t> content_length) override {
    if (aborted_) return failure_;
    if (head_written_) {
      return Status::FailedPrecondition(
          "the response head was already sent; write the body or call Finish()");
    }
    if (status < 200 || status > 599) {
      return Status::InvalidArgument(fmt::format(
          "HTTP status {} cannot be sent by a handler; use a final status between 200 and 599",
          status));
    }
    http::response_header<> head;
    head.version(facts_.version);
    head.result(static_cast<unsigned>(status));
    if (auto reason = StatusReason(status); reason != "Unknown") {
      head.reason(beast::string_view(reason.data(), reason.size()));
    }
    close_ = !facts_.may_keep_alive || stopping_();
    for (const auto& [name, value] : headers) {
      if (name.empty() || HasControlCharacters(name) || HasControlCharacters(value)) {
        return Status::InvalidArgument(fmt::format(
            "response header \"{}\" has an empty name or a CR, LF or NUL character; remove it",
            name));
      }
      if (EqualsIgnoreCase(name, "Content-Length") || EqualsIgnoreCase(name, "Transfer-Encoding")) {
        continue;  // framing follows content_length, not a header the handler may get wrong
      }
      if (EqualsIgnoreCase(name, "Connection")) {
        if (HasCloseToken(value)) close_ = true;
        continue;
      }
      head.insert(beast::string_view(name.data(), name.size()),
                  beast::string_view(value.data(), value.size()));
    }
    // An unread request body cannot be skipped reliably, so the connection closes after the
    // response; saying so lets the client stop sending.
    if (!body_.done()) close_ = true;

    status_ = status;
    no_body_ = facts_.head || status == 204 || status == 304;
    if (status != 204 && status != 304) {
      if (content_length) {
        head.set(http::field::content_length, std::to_string(*content_length));
        remaining_ = facts_.head ? 0 : *content_length;
        has_length_ = true;
      } else if (!facts_.head) {
        if (facts_.version >= 11) {
          head.set(http::field::transfer_encoding, "chunked");
          chunked_ = true;
        } else {
          close_ =
              true;  // HTTP/1.0 has no chunking: the end of the body is the end of the connection
        }
      }
    }
    if (close_) {
      head.set(http::field::connection, "close");
    } else if (facts_.version < 11) {
      head.set(http::field::connection, "keep-alive");
    }

    head_written_ = true;
    http::response<http::empty_body> message(std::move(head));
    http::response_serializer<http::empty_body> serializer(message);
    error_code ec;
    http::write_header(stream_, serializer, ec);
    if (ec) return Fail(ec);
    return Status::Ok();
  }

  Status Write(std::string_view data) override {
    if (!head_written_) {
      return Status::FailedPrecondition("call WriteHead before writing the response body");
    }
    if (!failure_.ok()) return failure_;
    if (finished_) {
      return Status::FailedPrecondition(
          "the response was already finished; nothing more can be written");
    }
    if (data.empty()) return Status::Ok();
    if (no_body_) {
      if (facts_.head) return Status::Ok();  // the same handler code serves GET and HEAD
      return Status::FailedPrecondition(
          fmt::format("a {} response has no body; do not write one", status_));
    }
    error_code ec;
    if (chunked_) {
      asio::write(stream_, http::make_chunk(asio::const_buffer(data.data(), data.size())), ec);
    } else {
      if (has_length_ && data.size() > remaining_) {
        close_ = true;
        return Status::InvalidArgument(fmt::format(
            "the response body is longer than the Content-Length of {} given to WriteHead; pass "
            "the real length, or none to send the body chunked",
            body_bytes_ + remaining_));
      }
      asio::write(stream_, asio::const_buffer(data.data(), data.size()), ec);
      if (has_length_) remaining_ -= data.size();
    }
    if (ec) return Fail(ec);
    body_bytes_ += data.size();
    return Status::Ok();
  }

  // With a Content-Length the file goes out through sendfile(2); a chunked body (or none)
  // takes the generic path.
  Status WriteFile(int fd, uint64_t offset, uint64_t length) override {
    if (head_written_ && failure_.ok() && facts_.head) return Status::Ok();  // as Write
    if (!head_written_ || !failure_.ok() || finished_ || no_body_ || chunked_ || !has_length_ ||
        length > remaining_) {
      return ResponseWriter::WriteFile(fd, offset, length);  // reports the misuse, if any
    }
    auto off = static_cast<off_t>(offset);
    while (length > 0) {
      error_code ec;
      size_t want = static_cast<size_t>(std::min<uint64_t>(length, 1u << 30));
      size_t sent = stream_.SendFile(fd, &off, want, ec);
      if (ec == asio::error::eof) {
        close_ = true;
        return Status::DataLoss("the file to send ended before the length given");
      }
      if (ec) return Fail(ec);
      length -= sent;
      remaining_ -= sent;
      body_bytes_ += sent;
    }
    return Status::Ok();
  }

  Status Finish() override {
    if (!head_written_) return Status::FailedPrecondition("call WriteHead before Finish");
    if (!failure_.ok()) return failure_;
    if (finished_) return Status::Ok();
    finished_ = true;
    if (chunked_) {
      error_code ec;
      asio::write(stream_, http::make_chunk_last(), ec);
      if (ec) return Fail(ec);
    }
    if (has_length_ && remaining_ > 0) {
      close_ = true;  // the client is still waiting for bytes that will never come
      return Status::FailedPrecondition(fmt::format(
          "the response body ended {} bytes short of the Content-Length given to WriteHead; the "
          "connection will be closed",
          remaining_));
    }
    return Status::Ok();
  }

  bool head_written() const override { return head_written_; }

  void Abort() override {
    aborted_ = true;
    close_ = true;
    if (failure_.ok()) {
      failure_ = Status::Aborted(fmt::format(
          "the response to {} was abandoned by its handler; the connection will be closed",
          remote_));
    }
  }
  bool aborted() const { return aborted_; }

  bool Abandoned() const override { return !failure_.ok() || stopping_() || stream_.PeerClosed(); }

  Result<UpgradedConnection*> Upgrade(const Headers& headers) override {
    if (aborted_) return failure_;
    if (head_written_) {
      return Status::FailedPrecondition(
          "the response head was already sent; a connection can only be upgraded instead of a "
          "response");
    }
    if (!body_.done() || facts_.head || facts_.version < 11) {
      return Status::FailedPrecondition(
          "only an HTTP/1.1 request without a body left to read can be upgraded");
    }
    std::string head = "HTTP/1.1 101 Switching Protocols\r\n";
    for (const auto& [name, value] : headers) {
      if (name.empty() || HasControlCharacters(name) || HasControlCharacters(value)) {
        return Status::InvalidArgument(fmt::format(
            "response header \"{}\" has an empty name or a CR, LF or NUL character; remove it",
            name));
      }
      head += name + ": " + value + "\r\n";
    }
    head += "\r\n";
    head_written_ = true;
    finished_ = true;
    close_ = true;
    status_ = 101;
    error_code ec;
    asio::write(stream_, asio::buffer(head.data(), head.size()), ec);
    if (ec) return Fail(ec);
    upgrade_.emplace(stream_, buffer_, remote_);
    return &*upgrade_;
  }
  bool upgraded() const { return upgrade_.has_value(); }

  // Whether the response can be finished by the server alone: everything promised was sent.
  bool can_finish() const {
    return head_written_ && failure_.ok() && (!has_length_ || remaining_ == 0);
  }
  bool finished() const { return finished_; }
  bool complete() const { return finished_ && failure_.ok() && !(has_length_ && remaining_ > 0); }
  bool close_after() const { return close_; }
  int status() const { return status_; }
  uint64_t body_bytes() const { return body_bytes_; }

 private:
  Status Fail(const error_code& ec) {
    close_ = true;
    failure_ = Status::Unavailable(fmt::format(
        "sending the response to {} failed ({}); the client may have gone away, stop writing",
        remote_, ec == beast::error::timeout ? "write timeout" : ec.message()));
    return failure_;
  }

  SocketStream& stream_;
  beast::flat_buffer& buffer_;
  std::optional<ConnectionUpgrade> upgrade_;
  RequestFacts facts_;
  const ConnectionBodyReader& body_;
  std::function<bool()> stopping_;
  const std::string& remote_;
  bool head_written_ = false;
  bool aborted_ = false;
  bool finished_ = false;
  bool close_ = false;
  bool no_body_ = false;
  bool chunked_ = false;
  bool has_length_ = false;
  uint64_t remaining_ = 0;
  uint64_t body_bytes_ = 0;
  int status_ = 0;
  Status failure_;
};

// How a connection continues after one request.
enum class Next { kKeepAlive, kClose, kCloseAfterDrain };

class ThreadedHttpServer final : public HttpServer {
 public:
  ThreadedHttpServer(Options options, HttpHandler handler, int listen_fd, int wake_fd,
                     uint16_t port, std::string host)
      : options_(std::move(options)),
        handler_(std::move(handler)),
        listen_fd_(listen_fd),
        wake_fd_(wake_fd),
        port_(port),
        host_(std::move(host)),
        overloaded_response_(OverloadedResponse(options_)) {}

  ~ThreadedHttpServer() override {
    Shutdown(Millis(10'000));
    ::close(wake_fd_);
  }

  // Separate from the constructor so the thread never sees a half-built object.
  void StartAccepting() {
    acceptor_ = std::thread([this] { AcceptLoop(); });
  }

  uint16_t port() const override { return port_; }
  std::string address() const override { return fmt::format("{}:{}", host_, port_); }

  void Shutdown(Millis grace) override {
    std::lock_guard shutdown_lock(shutdown_mu_);
    if (shut_down_) return;
    shut_down_ = true;
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
      for (auto& [id, conn] : live_) {
        if (conn->idle) ::shutdown(conn->fd, SHUT_RDWR);
      }
    }
    Wake();
    if (acceptor_.joinable()) acceptor_.join();
    ::close(listen_fd_);  // from here on, connection attempts are refused

    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, grace, [&] { return busy_ == 0; })) {
      spdlog::warn(
          "http server {}: {} request(s) still running after the {} ms grace period; closing "
          "their connections",
          address(), busy_, grace.count());
    }
    for (auto& [id, conn] : live_) ::shutdown(conn->fd, SHUT_RDWR);
    // A handler that ignores its closed connection still has to return before we can join it.
    cv_.wait(lock, [&] { return live_.empty(); });
    std::vector<std::unique_ptr<Connection>> done = std::move(finished_);
    finished_.clear();
    lock.unlock();
    for (auto& conn : done) conn->thread.join();
    spdlog::debug("http server {} stopped", address());
  }

 private:
  struct Connection {
    int fd = -1;
    std::string remote;
    bool idle = false;  // waiting for the first byte of the next request; guarded by mu_
    std::thread thread;
  };

  void Wake() {
    uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(wake_fd_, &one, sizeof(one));
  }

  bool Stopping() {
    std::lock_guard lock(mu_);
    return stopping_;
  }

  void AcceptLoop() {
    for (;;) {
      pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
      if (::poll(fds, 2, -1) < 0 && errno != EINTR) {
        spdlog::warn("http server {}: poll failed ({}); accepting stops", address(),
                     std::strerror(errno));
        return;
      }
      if (fds[1].revents) {
        uint64_t count;
        [[maybe_unused]] auto n = ::read(wake_fd_, &count, sizeof(count));
        JoinFinished();
      }
      if (Stopping()) return;
      if (fds[0].revents & POLLIN) AcceptPending();
    }
  }

  void JoinFinished() {
    std::vector<std::unique_ptr<Connection>> done;
    {
      std::lock_guard lock(mu_);
      done.swap(finished_);
    }
    for (auto& conn : done) conn->thread.join();
  }

  void AcceptPending() {
    for (;;) {
      sockaddr_in peer{};
      socklen_t peer_len = sizeof(peer);
      int fd = ::accept4(listen_fd_, reinterpret_cast<sockaddr*>(&peer), &peer_len,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;
        if (errno == EINTR || errno == ECONNABORTED) continue;
        spdlog::warn(
            "http server {}: accept failed ({}); retrying shortly — raise the open file "
            "limit (ulimit -n) if this is EMFILE",
            address(), std::strerror(errno));
        std::this_thread::sleep_for(Millis(50));
        return;
      }
      int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      char ip[INET_ADDRSTRLEN] = "?";
      ::inet_ntop(AF_INET, &peer.sin_addr, ip, sizeof(ip));
      std::string remote = fmt::format("{}:{}", ip, ntohs(peer.sin_port));

      std::lock_guard lock(mu_);
      if (live_.size() >= options_.max_connections) {
        spdlog::warn(
            "http server {}: refusing {} with 503: already {} connections (max_connections)",
            address(), remote, live_.size());
        RefuseOverloaded(fd);
        continue;
      }
      auto conn = std::make_unique<Connection>();
      Connection* c = conn.get();
      c->fd = fd;
      c->remote = std::move(remote);
      uint64_t id = next_id_++;
      live_.emplace(id, std::move(conn));
      try {
        // The new thread blocks on mu_ before touching live_, so assigning c->thread under
        // the lock cannot race with its exit.
        c->thread = std::thread([this, c, id] { Serve(c, id); });
      } catch (const std::system_error& e) {
        spdlog::warn("http server {}: cannot start a thread for {} ({}); closing it", address(),
                     c->remote, e.what());
        ::close(fd);
        live_.erase(id);
      }
    }
  }

  // Answers 503 without a thread: the response fits in an empty socket buffer, so the
  // non-blocking send does not wait.
  void RefuseOverloaded(int fd) const {
    [[maybe_unused]] auto n = ::send(fd, overloaded_response_.data(), overloaded_response_.size(),
                                     MSG_NOSIGNAL | MSG_DONTWAIT);
    ::shutdown(fd, SHUT_WR);
    char sink[4096];
    while (::recv(fd, sink, sizeof(sink), MSG_DONTWAIT) > 0) {
    }
    ::close(fd);
  }

  // The whole 503 answer past max_connections, made once: it says what the limit is and which
  // setting raises it, so whoever reads it (a client's error, a load test) knows what to change.
  static std::string OverloadedResponse(const Options& options) {
    std::string body = fmt::format(
        "the server is at its limit of {} connections at once; retry shortly", options.max_connections);
    if (!options.max_connections_setting.empty()) {
      body += fmt::format(", or have its operator raise {}", options.max_connections_setting);
    }
    body += ".\n";
    return fmt::format(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n"
        "Retry-After: 1\r\nConnection: close\r\n\r\n{}",
        body.size(), body);
  }

  void Serve(Connection* c, uint64_t id) {
    SocketStream stream(c->fd, options_.read_timeout, options_.write_timeout);
    beast::flat_buffer buffer;  // bytes read past one request belong to the next (pipelining)
    Next next = Next::kClose;
    while (AwaitRequest(c, stream, buffer)) {
      next = ServeOne(c, stream, buffer);
      {
        std::lock_guard lock(mu_);
        --busy_;
      }
      cv_.notify_all();
      if (next != Next::kKeepAlive) break;
    }
    if (next == Next::kCloseAfterDrain) {
      ::shutdown(c->fd, SHUT_WR);
      stream.Drain(4 << 20, std::min(options_.read_timeout, Millis(1000)));
    }
    {
      std::lock_guard lock(mu_);
      ::close(c->fd);
      c->fd = -1;
      auto it = live_.find(id);
      finished_.push_back(std::move(it->second));
      live_.erase(it);
    }
    cv_.notify_all();
    Wake();  // lets the acceptor join this thread
  }

  // Waits for the next request to start; on true the connection counts as busy.
  bool AwaitRequest(Connection* c, SocketStream& stream, beast::flat_buffer& buffer) {
    if (buffer.size() == 0) {
      {
        std::lock_guard lock(mu_);
        if (stopping_) return false;
        c->idle = true;
      }
      bool ready = stream.WaitReadable(options_.idle_timeout);
      std::lock_guard lock(mu_);
      c->idle = false;
      if (stopping_ || !ready) return false;
      ++busy_;
      return true;
    }
    std::lock_guard lock(mu_);
    if (stopping_) return false;
    ++busy_;
    return true;
  }

  Next ServeOne(Connection* c, SocketStream& stream, beast::flat_buffer& buffer) {
    auto started = SteadyClock::now();
    RequestParser parser;
    parser.header_limit(
        static_cast<uint32_t>(std::min<size_t>(options_.max_header_bytes, UINT32_MAX)));
    parser.body_limit(options_.max_body_bytes);
    error_code ec;
    http::read_header(stream, buffer, parser, ec);
    if (ec) return RejectHeader(c, stream, ec);

    auto& message = parser.get();
    // RFC 9112 6.3: a request whose Transfer-Encoding does not end in chunked has no length a
    // server can trust (a proxy in front may see another); it must be refused and the
    // connection closed, or what follows could be read as a smuggled request.
    if (message.count(http::field::transfer_encoding) > 0 && !parser.chunked()) {
      return Refuse(c, stream, 400,
                    "the request's Transfer-Encoding does not end in chunked, so its body has no "
                    "length; send it chunked or with a Content-Length");
    }
    HttpRequest request;
    request.method = std::string(message.method_string());
    request.target = std::string(message.target());
    size_t question = request.target.find('?');
    request.path = request.target.substr(0, question);
    if (question != std::string::npos) request.query = request.target.substr(question + 1);
    for (const auto& field : message) {
      request.headers.Add(std::string(field.name_string()), std::string(field.value()));
    }
    if (auto length = parser.content_length()) request.content_length = *length;
    request.chunked = parser.chunked();
    request.remote_address = c->remote;

    bool continue_pending = message.version() >= 11 && !parser.is_done() &&
                            EqualsIgnoreCase(message[http::field::expect], "100-continue");
    ConnectionBodyReader body(stream, buffer, parser, continue_pending, c->remote,
                              options_.max_body_bytes, options_.read_timeout);
    ConnectionResponseWriter::RequestFacts facts;
    facts.head = message.method() == http::verb::head;
    facts.version = message.version();
    facts.may_keep_alive = message.keep_alive();
    ConnectionResponseWriter writer(
        stream, buffer, facts, body, [this] { return Stopping(); }, c->remote);

    bool threw = false;
    try {
      handler_(request, body, writer);
    } catch (const std::exception& e) {
      threw = true;
      spdlog::warn("http server {}: handler for {} {} from {} threw: {}", address(), request.method,
                   request.target, c->remote, e.what());
    } catch (...) {
      threw = true;
      spdlog::warn("http server {}: handler for {} {} from {} threw a non-standard exception",
                   address(), request.method, request.target, c->remote);
    }

    if (writer.aborted()) {
      // The handler chose to close the connection on an incomplete response.
    } else if (!writer.head_written()) {
      if (!threw) {
        spdlog::warn("http server {}: handler for {} {} returned without a response; sending 500",
                     address(), request.method, request.target);
      }
      (void)writer.Send(500, {{"Content-Type", "text/plain"}},
                        "the server failed to produce a response; this is a bug in the server\n");
    } else if (!threw && !writer.finished() && writer.can_finish()) {
      (void)writer.Finish();  // a handler that forgot Finish() still sent everything it promised
    }

    spdlog::debug("{} {} {} -> {} ({} body bytes in, {} out, {} ms)", c->remote, request.method,
                  request.target, writer.status(), body.bytes_read(), writer.body_bytes(),
                  std::chrono::duration_cast<Millis>(SteadyClock::now() - started).count());

    if (writer.upgraded()) return Next::kClose;  // the bytes that followed were not HTTP
    if (!body.done()) return Next::kCloseAfterDrain;
    if (threw || body.failed() || !writer.complete() || writer.close_after()) return Next::kClose;
    return Next::kKeepAlive;
  }

  // Answers a request whose header could not be read, when there is a client left to answer.
  Next RejectHeader(Connection* c, SocketStream& stream, const error_code& ec) {
    if (ec == http::error::end_of_stream || ec == http::error::partial_message) {
      return Next::kClose;  // the client closed the connection; nobody is left to answer
    }
    if (ec == beast::error::timeout) {
      spdlog::debug(
          "http server {}: {} sent an incomplete request header and then nothing for {} "
          "ms; closing the connection",
          address(), c->remote, options_.read_timeout.count());
      return Next::kClose;
    }
    int status;
    std::string message;
    if (ec == http::error::header_limit) {
      status = 431;
      message = fmt::format(
          "the request header section exceeds this server's limit of {} bytes; "
          "send fewer or shorter header fields",
          options_.max_header_bytes);
    } else if (ec == http::error::body_limit) {
      status = 413;
      message = fmt::format(
          "the request body is larger than this server's limit of {} bytes; "
          "send a smaller body",
          options_.max_body_bytes);
    } else if (ec.category() == http::make_error_code(http::error::bad_target).category()) {
      status = 400;
      message = fmt::format("the request is not valid HTTP/1.1 ({}); fix the client", ec.message());
    } else {
      spdlog::debug("http server {}: reading a request from {} failed: {}", address(), c->remote,
                    ec.message());
      return Next::kClose;
    }
    return Refuse(c, stream, status, message);
  }

  // Answers a request that will not be served with status and message, and closes.
  Next Refuse(Connection* c, SocketStream& stream, int status, const std::string& message) {
    spdlog::warn("http server {}: answering {} with {}: {}", address(), c->remote, status, message);
    std::string body = message + "\n";
    http::response<http::string_body> response(static_cast<http::status>(status), 11);
    response.set(http::field::content_type, "text/plain");
    response.set(http::field::connection, "close");
    response.body() = std::move(body);
    response.prepare_payload();
    error_code write_ec;
    http::write(stream, response, write_ec);
    return Next::kCloseAfterDrain;
  }

  const Options options_;
  const HttpHandler handler_;
  const int listen_fd_;
  const int wake_fd_;  // eventfd: wakes the acceptor to join finished threads or to stop
  const uint16_t port_;
  const std::string host_;
  const std::string overloaded_response_;  // after options_, which it is made from
  std::thread acceptor_;

  std::mutex shutdown_mu_;  // serializes Shutdown calls
  bool shut_down_ = false;

  std::mutex mu_;
  std::condition_variable cv_;  // a request finished, or a connection ended
  bool stopping_ = false;
  size_t busy_ = 0;  // connections with a request in progress
  uint64_t next_id_ = 0;
  std::map<uint64_t, std::unique_ptr<Connection>> live_;
  std::vector<std::unique_ptr<Connection>> finished_;  // threads that ended, not yet joined
};

// "host:port" → IPv4 socket address; "localhost" and an empty host are understood.
Result<sockaddr_in> ParseListenAddress(const std::string& listen) {
  auto invalid = [&] {
    return Status::InvalidArgument(
        fmt::format("listen address \"{}\" is not host:port with an IPv4 host; use for example "
                    "127.0.0.1:8080, localhost:8080 or 0.0.0.0:0",
                    listen));
  };
  size_t colon = listen.rfind(':');
  if (colon == std::string::npos) return invalid();
  std::string host = listen.substr(0, colon);
  std::string port_text = listen.substr(colon + 1);
  unsigned port = 0;
  auto [end, err] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || err != std::errc() || end != port_text.data() + port_text.size() ||
      port > 65535) {
    return invalid();
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (host.empty()) host = "0.0.0.0";
  if (EqualsIgnoreCase(host, "localhost")) host = "127.0.0.1";
  if (::inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) return invalid();
  return addr;
}

// Descriptors a service needs besides its client connections: database files and connections,
// its own HTTP clients, logs, the listening socket.
constexpr uint64_t kDescriptorsOfItsOwn = 128;

// Raises the soft open file limit towards the hard one when it cannot carry the connection cap,
// and says so at start when even the hard limit cannot: past it accept() fails with EMFILE and
// clients wait instead of getting the 503 that names the setting.
void CheckOpenFileLimit(const HttpServer::Options& options) {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
  const uint64_t needed = options.max_connections + kDescriptorsOfItsOwn;
  if (limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur < needed) {
    rlimit raised = limit;
    raised.rlim_cur = limit.rlim_max == RLIM_INFINITY ? needed : std::min<uint64_t>(needed, limit.rlim_max);
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) {
      spdlog::info("raised the open file limit from {} to {} for {} connections at once",
                   limit.rlim_cur, raised.rlim_cur, options.max_connections);
      limit = raised;
    }
  }
  if (limit.rlim_cur == RLIM_INFINITY) return;
  std::string problem = OpenFileLimitProblem(limit.rlim_cur, options.max_connections,
                                             options.max_connections_setting);
  if (!problem.empty()) spdlog::warn("{} (listening on {})", problem, options.listen);
}

}  // namespace

std::string OpenFileLimitProblem(uint64_t limit, size_t max_connections,
                                 std::string_view setting) {
  const uint64_t needed = max_connections + kDescriptorsOfItsOwn;
  if (limit >= needed) return "";
  return fmt::format(
      "the open file limit (ulimit -n) is {}, below the {} descriptors that {} connections at "
      "once need (one each, and {} for the service itself): past about {} connections accept "
      "fails and clients wait unanswered; raise the hard limit (ulimit -Hn, LimitNOFILE= in a "
      "systemd unit) or lower {}",
      limit, needed, max_connections, kDescriptorsOfItsOwn,
      limit > kDescriptorsOfItsOwn ? limit - kDescriptorsOfItsOwn : 0,
      setting.empty() ? std::string_view("the connection cap") : setting);
}

Result<std::unique_ptr<HttpServer>> HttpServer::Start(Options options, HttpHandler handler) {
  if (!handler) return Status::InvalidArgument("HttpServer::Start needs a handler; pass one");
  if (options.max_connections == 0 || options.max_header_bytes == 0 ||
      options.read_timeout.count() <= 0 || options.write_timeout.count() <= 0 ||
      options.idle_timeout.count() <= 0) {
    return Status::InvalidArgument(
        "HttpServer options need max_connections, max_header_bytes and every timeout above zero; "
        "fix the server configuration");
  }
  SLIPWAY_ASSIGN_OR_RETURN(sockaddr_in addr, ParseListenAddress(options.listen));
  CheckOpenFileLimit(options);

  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return Status::Unavailable(fmt::format("cannot create a socket to listen on {}: {}",
                                           options.listen, std::strerror(errno)));
  }
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::listen(fd, SOMAXCONN) != 0) {
    int err = errno;
    ::close(fd);
    if (err == EADDRINUSE) {
      return Status::Unavailable(fmt::format(
          "cannot listen on {}: the address is already in use; pick another port or stop the "
          "process that holds it",
          options.listen));
    }
    return Status::Unavailable(
        fmt::format("cannot listen on {}: {}", options.listen, std::strerror(err)));
  }
  sockaddr_in bound{};
  socklen_t bound_len = sizeof(bound);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &bound_len);
  char ip[INET_ADDRSTRLEN] = "";
  ::inet_ntop(AF_INET, &bound.sin_addr, ip, sizeof(ip));

  int wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd < 0) {
    ::close(fd);
    return Status::Unavailable(
        fmt::format("cannot create an eventfd for the HTTP server: {}", std::strerror(errno)));
  }
  auto server = std::make_unique<ThreadedHttpServer>(std::move(options), std::move(handler), fd,
                                                     wake_fd, ntohs(bound.sin_port), ip);
  try {
    server->StartAccepting();
  } catch (const std::system_error& e) {
    return Status::Unavailable(
        fmt::format("cannot start the HTTP server's acceptor thread: {}", e.what()));
  }
  spdlog::debug("http server listening on {}", server->address());
  return std::unique_ptr<HttpServer>(std::move(server));
}

}  // namespace slipway::net
