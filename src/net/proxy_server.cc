// ProxyServer: N event loops (one io_context and one thread each), C++20 coroutines on them.
//
// Each client connection is one coroutine on one loop for its whole life, and so are the
// connections to upstreams it uses (taken from, and given back to, that loop's pool): nothing
// a connection touches is shared between threads, so nothing on the request path locks.
// Timeouts are deadlines on each socket's pending read and write, checked by one sweep timer
// per loop rather than a timer per operation; a deadline that passes cancels the socket's
// operations, and the coroutine sees why from Watched::timed_out. A read that came up short
// emptied its socket, so the next one waits for the reactor rather than trying recv() first
// (socket_readiness.h): that saves the recv() per request and side that would fail with EAGAIN.
//
// Memory: a connection waiting for its next request holds no buffer (it waits for the socket
// to become readable); buffers come from a small per-loop free list while a request is in
// flight, one for the client's bytes and one for the upstream's.
// Asio recycles coroutine frames per thread; a request nests about a dozen, so keep that many
// (the default, 2, sends most of them to malloc). Every file that includes Asio defines it alike.
#define BOOST_ASIO_RECYCLING_ALLOCATOR_CACHE_SIZE 16
#include "net/proxy_server.h"

#include <netinet/tcp.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <array>
#include <functional>
#include <future>
#include <span>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>
#include <tuple>
#include <unordered_map>
#include <unordered_set>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "net/http_wire.h"
#include "net/socket_readiness.h"

namespace slipway::net {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;
using Millis = std::chrono::milliseconds;
template <class T = void>
using Task = asio::awaitable<T>;
constexpr auto kAwait = asio::as_tuple(asio::use_awaitable);
constexpr Clock::time_point kNever = Clock::time_point::max();
constexpr size_t kBufferBytes = 64 * 1024;
// A body the client sends with a request the policy answers itself is read and dropped up to
// this size so the connection can carry the next request; a larger one closes it.
constexpr uint64_t kMaxDiscardBytes = 1 << 20;
constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
constexpr std::string_view kLastChunk = "0\r\n\r\n";
constexpr std::string_view kCrlf = "\r\n";

// A socket whose pending read and write are bounded by deadlines the loop's sweep enforces.
struct Watched {
  explicit Watched(tcp::socket s) : socket(std::move(s)) {}
  tcp::socket socket;
  Clock::time_point read_deadline = kNever;
  Clock::time_point write_deadline = kNever;
  bool timed_out = false;

  void Check(Clock::time_point now) {
    if (now < read_deadline && now < write_deadline) return;
    timed_out = true;
    read_deadline = write_deadline = kNever;
    error_code ignored;
    socket.cancel(ignored);
  }
  void Close() {
    error_code ignored;
    socket.shutdown(tcp::socket::shutdown_both, ignored);
    socket.close(ignored);
  }
};

Task<std::pair<error_code, size_t>> ReadSome(Watched& w, char* data, size_t n,
                                             Clock::time_point deadline) {
  w.read_deadline = deadline;
  auto [ec, got] = co_await w.socket.async_read_some(asio::buffer(data, n), kAwait);
  w.read_deadline = kNever;
  if (!ec && got < n) ReadCameUpShort(w.socket);  // the next read waits for the next edge
  co_return std::pair{ec, got};
}

template <class Buffers>
Task<error_code> WriteBuffers(Watched& w, const Buffers& buffers, Millis timeout) {
  w.write_deadline = Clock::now() + timeout;
  auto [ec, ignored] = co_await asio::async_write(w.socket, buffers, kAwait);
  w.write_deadline = kNever;
  co_return ec;
}

Task<error_code> WriteAll(Watched& w, std::string_view data, Millis timeout) {
  co_return co_await WriteBuffers(w, asio::buffer(data.data(), data.size()), timeout);
}

// Buffers are mapped memory of their own, so one given back to the system really leaves the
// process (a heap would keep it after a burst of load).
struct Unmap {
  size_t size = 0;
  void operator()(char* p) const { ::munmap(p, size); }
};
using Bytes = std::unique_ptr<char[], Unmap>;

// A buffer from a loop's free list, with the window [begin, end) of bytes not yet used.
struct Buffer {
  Bytes bytes;
  size_t begin = 0, end = 0;
  char* data() { return bytes.get() + begin; }
  size_t size() const { return end - begin; }
  std::string_view view() const { return {bytes.get() + begin, end - begin}; }
  void Compact() {
    if (begin == 0) return;
    std::memmove(bytes.get(), bytes.get() + begin, end - begin);
    end -= begin;
    begin = 0;
  }
};

// A loop's free buffers. The list grows with the load; every second the buffers that stayed
// unused all along are unmapped, so memory follows the load back down.
class BufferPool {
 public:
  explicit BufferPool(size_t capacity) : capacity_(capacity) {}
  size_t capacity() const { return capacity_; }
  void Take(Buffer& b) {
    if (b.bytes) return;
    if (free_.empty()) {
      void* p = ::mmap(nullptr, capacity_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (p == MAP_FAILED) throw std::bad_alloc();
      b.bytes = Bytes(static_cast<char*>(p), Unmap{capacity_});
    } else {
      b.bytes = std::move(free_.back());
      free_.pop_back();
      unused_ = std::min(unused_, free_.size());
    }
    b.begin = b.end = 0;
  }
  void Give(Buffer& b) {
    if (!b.bytes) return;
    free_.push_back(std::move(b.bytes));
    b.begin = b.end = 0;
  }
  // Called by the sweep: unmaps what was not needed since the last call a second or more ago.
  void Trim(Clock::time_point now) {
    if (now - last_trim_ < std::chrono::seconds(1)) return;
    last_trim_ = now;
    free_.resize(free_.size() - std::min(unused_, free_.size()));
    unused_ = free_.size();
  }

 private:
  size_t capacity_;
  std::vector<Bytes> free_;
  size_t unused_ = 0;  // the fewest free buffers since the last trim
  Clock::time_point last_trim_{};
};

struct UpstreamConnection {
  UpstreamConnection(tcp::socket s, std::string a) : watched(std::move(s)), address(std::move(a)) {}
  Watched watched;
  std::string address;
  bool reused = false;
  Clock::time_point idle_since{};
};
using UpstreamPtr = std::unique_ptr<UpstreamConnection>;

// Whether an idle connection is still usable: nothing to read and not closed by the peer.
bool StillOpen(tcp::socket& socket) {
  char byte;
  ssize_t r = ::recv(socket.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

class Session;

struct Loop {
  explicit Loop(size_t buffer_bytes) : buffers(buffer_bytes) {}
  // One thread runs this context, and every socket of the loop is only touched from it (other
  // threads post to it), so the reactor's per-socket locks are dropped; registration and the
  // scheduler keep theirs (sockets are accepted onto a loop from loop 0, work is posted in).
  asio::io_context io{BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO};
  BufferPool buffers;
  std::unordered_map<std::string, std::vector<UpstreamPtr>> idle_upstreams;
  std::unordered_set<Session*> sessions;
  bool shutting_down = false;
  std::thread thread;

  // check: make sure the upstream did not close it (a request with a body cannot be repeated
  // on a fresh connection once its body was read; one without is, when it meets a closed one).
  UpstreamPtr TakeIdle(const std::string& address, bool check) {
    auto it = idle_upstreams.find(address);
    if (it == idle_upstreams.end()) return nullptr;
    while (!it->second.empty()) {
      UpstreamPtr c = std::move(it->second.back());
      it->second.pop_back();
      if (!check || StillOpen(c->watched.socket)) {
        c->reused = true;
        return c;
      }
      c->watched.Close();
    }
    return nullptr;
  }
  void GiveIdle(UpstreamPtr c, size_t max_idle) {
    auto& list = idle_upstreams[c->address];
    if (shutting_down || list.size() >= max_idle) {
      c->watched.Close();
      return;
    }
    c->idle_since = Clock::now();
    c->watched.timed_out = false;
    list.push_back(std::move(c));
  }
  void ExpireIdle(Clock::time_point now, Millis keepalive) {
    for (auto it = idle_upstreams.begin(); it != idle_upstreams.end();) {
      std::erase_if(it->second, [&](UpstreamPtr& c) {
        if (now - c->idle_since < keepalive) return false;
        c->watched.Close();
        return true;
      });
      it = it->second.empty() ? idle_upstreams.erase(it) : std::next(it);
    }
  }
};

void AppendStatusLine(int status, std::string* out) {
  char digits[8];
  char* end = std::to_chars(digits, digits + sizeof digits, status).ptr;
  *out += "HTTP/1.1 ";
  out->append(digits, end);
  *out += ' ';
  *out += StatusReason(status);
  *out += kCrlf;
}

// The framing fields the engine writes itself, and the blank line that ends the head.
void AppendFraming(std::optional<uint64_t> length, bool chunked, bool keep_alive,
                   std::string* out) {
  if (length) {
    char digits[24];
    char* end = std::to_chars(digits, digits + sizeof digits, *length).ptr;
    *out += "Content-Length: ";
    out->append(digits, end);
    *out += kCrlf;
  }
  if (chunked) *out += "Transfer-Encoding: chunked\r\n";
  if (!keep_alive) *out += "Connection: close\r\n";
  *out += kCrlf;
}

std::string LocalHead(int status, const Headers& headers, std::optional<uint64_t> length,
                      bool chunked, bool keep_alive) {
  std::string out;
  out.reserve(256);
  AppendStatusLine(status, &out);
  for (const auto& [name, value] : headers) {
    out += name;
    out += ": ";
    out += value;
    out += kCrlf;
  }
  AppendFraming(length, chunked, keep_alive, &out);
  return out;
}

// An answer the engine gives itself to a request it cannot take.
LocalResponse Refusal(int status, std::string_view what) {
  LocalResponse r;
  r.status = status;
  r.headers = {{"Content-Type", "text/plain; charset=utf-8"}, {"Cache-Control", "no-store"}};
  r.body = fmt::format("{} {}: {}.\n", status, StatusReason(status), what);
  return r;
}

LocalResponse MalformedBody(const Status& why) {
  return Refusal(400, why.message() +
                          "; send each chunk as its size in hex, CRLF, its bytes and CRLF, and end "
                          "with a zero-size chunk");
}

class Server;

// One client connection, for its whole life.
class Session {
 public:
  Session(Server& server, Loop& loop, tcp::socket socket, std::string remote);
  Task<void> Run();
  // The loop's sweep.
  void CheckDeadlines(Clock::time_point now) {
    client_.Check(now);
    if (upstream_ != nullptr) upstream_->watched.Check(now);
  }
  // Shutdown: a connection waiting for its next request goes at once.
  void CloseIfIdle() {
    if (!idle_) return;
    error_code ignored;
    client_.socket.cancel(ignored);
  }
  // Shutdown after the grace period: everything goes.
  void ForceClose() {
    forced_ = true;
    client_.Close();
    if (upstream_ != nullptr) upstream_->watched.Close();
  }

 private:
  // The state of a request body being sent upstream by its own coroutine (Pump), while the
  // session's coroutine reads the response.
  struct BodyPump {
    explicit BodyPump(asio::io_context& io) : finished(io) {}
    bool running = false;
    bool complete = false;        // the whole body went upstream
    bool client_failed = false;   // the client broke off, timed out or sent a malformed body
    bool malformed = false;       // ... and it was the body's framing: the client hears why
    bool stopping = false;        // StopPump cancelled it: not the client's failure
    Status why;
    asio::steady_timer finished;  // cancelled when the pump ends
  };
  enum class Sent { kKeep, kClose, kRetryFresh };

  size_t MaxHeaderBytes() const;
  Task<bool> ReadHead(size_t* head_bytes);
  Task<bool> Exchange(RequestHead head);
  Task<bool> SendLocal(const LocalResponse& response, bool head_request, bool keep_alive);
  Task<bool> DiscardBody(const ProxyRequest& request);
  Task<bool> Forward(const ProxyRequest& request, const RequestHead& head, const ProxyRoute& route,
                     ProxyOutcome& outcome);
  Task<Result<UpstreamPtr>> Connect(const std::string& address);
  Task<Sent> ForwardOn(UpstreamConnection& upstream, const ProxyRequest& request,
                       const RequestHead& head, const ProxyRoute& route, ProxyOutcome& outcome);
  Task<Sent> Relay(UpstreamConnection& upstream, const ProxyRequest& request,
                   const RequestHead& head, const ProxyRoute& route, ProxyOutcome& outcome);
  Task<Sent> Tunnel(UpstreamConnection& upstream, const ResponseHead& response,
                    const ProxyRequest& request, ProxyOutcome& outcome);
  Task<void> Copy(Watched& from, Buffer& buffer, Watched& to, Millis write_timeout);
  Task<Sent> ClientBodyFailed(bool response_begun, ProxyOutcome& outcome);
  Task<Sent> Fail(const ProxyRequest& request, const ProxyRoute& route, std::string_view address,
                  const Status& why, bool timed_out, ProxyOutcome& outcome);
  Task<void> Pump(UpstreamConnection& upstream, const ProxyRequest& request);
  Task<void> StopPump(UpstreamConnection* upstream);
  Task<void> Close();
  bool Draining() const;

  Server& server_;
  Loop& loop_;
  const ProxyServerOptions& options_;
  Watched client_;
  std::string remote_;
  Buffer in_;   // the client's bytes
  Buffer out_;  // the upstream's bytes, while a request is forwarded
  UpstreamConnection* upstream_ = nullptr;
  std::unique_ptr<BodyPump> pump_;
  std::array<char, 512> first_;  // the first bytes of a request, read while idle
  bool idle_ = false;
  bool forced_ = false;
  bool unread_body_ = false;  // the client may still be sending a body nobody reads
  bool upstream_reusable_ = false;  // the exchange just forwarded left its upstream connection clean
  // Kept from one request to the next so that forwarding allocates nothing once they have
  // grown: the head sent upstream, the upstream's parsed response head, the head sent back.
  std::string request_head_;
  ResponseHead response_;
  std::string client_head_;
};

class Server final : public ProxyServer {
 public:
  Server(ProxyServerOptions options, ProxyPolicy& policy) : options_(std::move(options)), policy_(policy) {}
  ~Server() override { Shutdown(Millis(10'000)); }

  Status Bind();
  void Run();
  uint16_t port() const override { return port_; }
  std::string address() const override { return address_; }
  size_t threads() const override { return loops_.size(); }
  size_t connections() const override { return live_.load(); }
  void Shutdown(std::chrono::milliseconds grace) override;

  const ProxyServerOptions& options() const { return options_; }
  // Shutdown has begun: responses say "Connection: close", connections end after them.
  bool draining() const { return draining_.load(std::memory_order_relaxed); }
  ProxyPolicy& policy() { return policy_; }
  void SessionEnded() {
    if (live_.fetch_sub(1) == 1) {
      std::lock_guard lock(mu_);
      cv_.notify_all();
    }
  }

 private:
  Task<void> Accept();
  Task<void> Sweep(Loop& loop);
  // Runs fn on every loop's thread and waits until each has.
  void OnEveryLoop(const std::function<void(Loop&)>& fn);
  Millis SweepInterval() const;

  ProxyServerOptions options_;
  ProxyPolicy& policy_;
  std::vector<std::unique_ptr<Loop>> loops_;
  std::unique_ptr<tcp::acceptor> acceptor_;
  uint16_t port_ = 0;
  std::string address_;
  std::atomic<size_t> live_{0};
  std::atomic<bool> stopping_{false};
  std::atomic<bool> draining_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  bool shut_down_ = false;
  bool running_ = false;  // Run() started the loops
};

Task<void> Serve(Server& server, Loop& loop, tcp::socket socket) {
  error_code ec;
  tcp::endpoint peer = socket.remote_endpoint(ec);
  std::string remote = ec ? "unknown" : fmt::format("{}:{}", peer.address().to_string(), peer.port());
  {
    Session session(server, loop, std::move(socket), std::move(remote));
    co_await session.Run();
  }
  server.SessionEnded();
}

Session::Session(Server& server, Loop& loop, tcp::socket socket, std::string remote)
    : server_(server),
      loop_(loop),
      options_(server.options()),
      client_(std::move(socket)),
      remote_(std::move(remote)) {
  TrackPeerClose(client_.socket);
}

bool Session::Draining() const { return server_.draining(); }

size_t Session::MaxHeaderBytes() const {
  return std::min(options_.max_header_bytes, loop_.buffers.capacity());
}

Task<void> Session::Run() {
  loop_.sessions.insert(this);
  for (;;) {
    if (in_.size() == 0) {
      // Between requests no pool buffer is held: the first bytes of the next request land in
      // the session's own small one. (A read, unlike a wait for readability, costs Asio no
      // epoll_ctl: it only parks the operation until the edge-triggered event.)
      loop_.buffers.Give(in_);
      if (Draining()) break;
      idle_ = true;
      auto [ec, got] = co_await ReadSome(client_, first_.data(), first_.size(),
                                         Clock::now() + options_.client_idle_timeout);
      idle_ = false;
      if (ec || Draining()) break;
      loop_.buffers.Take(in_);
      std::memcpy(in_.bytes.get(), first_.data(), got);
      in_.end = got;
    }
    size_t head_bytes = 0;
    if (!co_await ReadHead(&head_bytes)) break;
    auto head = ParseRequestHead(std::string_view(in_.data(), head_bytes));
    in_.begin += head_bytes;
    if (!head.ok()) {
      unread_body_ = true;
      (void)co_await SendLocal(Refusal(400, head.status().message()), false, false);
      break;
    }
    if (head->content_length && *head->content_length > options_.max_body_bytes) {
      unread_body_ = true;
      (void)co_await SendLocal(
          Refusal(413, fmt::format("the request body is larger than the {} bytes accepted here",
                                   options_.max_body_bytes)),
          head->method == "HEAD", false);
      break;
    }
    if (!co_await Exchange(std::move(head).value())) break;
  }
  co_await Close();
  loop_.sessions.erase(this);
}

// Reads until in_ starts with a complete head; false when the connection is to be closed (an
// answer, if one is due, was sent).
Task<bool> Session::ReadHead(size_t* head_bytes) {
  // The whole head must arrive within header_timeout of its first byte, however it trickles.
  auto deadline = Clock::now() + options_.header_timeout;
  size_t checked = 0;  // bytes at the front of in_ that CheckPartialRequestHead has seen
  for (;;) {
    while (in_.size() >= 2 && in_.data()[0] == '\r' && in_.data()[1] == '\n') {
      in_.begin += 2;
      checked = 0;
    }
    if (auto n = HeadLength(in_.view())) {
      if (*n > MaxHeaderBytes()) break;
      *head_bytes = *n;
      co_return true;
    }
    // A head that can never end well is answered now, not after the header timeout.
    if (in_.size() > 0 && in_.view() != "\r") {
      if (Status bad = CheckPartialRequestHead(in_.view(), checked); !bad.ok()) {
        unread_body_ = true;
        (void)co_await SendLocal(Refusal(400, bad.message()), false, false);
        co_return false;
      }
      checked = in_.size();
    }
    if (in_.size() >= MaxHeaderBytes()) break;
    in_.Compact();
    auto [ec, n] = co_await ReadSome(client_, in_.bytes.get() + in_.end,
                                     loop_.buffers.capacity() - in_.end, deadline);
    if (ec) {
      if (client_.timed_out && in_.size() > 0 && !forced_) {
        client_.timed_out = false;
        unread_body_ = true;
        (void)co_await SendLocal(
            Refusal(408, "the request head did not arrive in time; send it whole"), false, false);
      }
      co_return false;
    }
    in_.end += n;
  }
  unread_body_ = true;
  (void)co_await SendLocal(
      Refusal(431, fmt::format("the request head is larger than the {} bytes accepted here",
                               MaxHeaderBytes())),
      false, false);
  co_return false;
}

Task<bool> Session::Exchange(RequestHead head) {
  auto started = Clock::now();
  ProxyRequest request;
  request.method = std::move(head.method);
  request.target = std::move(head.target);
  request.headers = std::move(head.headers);
  request.content_length = head.content_length;
  request.chunked = head.chunked;
  request.remote_address = remote_;
  pump_.reset();
  ProxyRoute route = server_.policy().Route(request);
  ProxyOutcome outcome;
  bool keep = head.keep_alive;
  if (route.answer) {
    if (request.has_body()) {
      // A client waiting for 100-continue is never asked for the body it would send.
      if (head.expect_continue) {
        keep = false;
        unread_body_ = true;
      } else if (!co_await DiscardBody(request)) {
        keep = false;
      }
    }
    outcome.status = route.answer->status;
    outcome.body_bytes = request.method == "HEAD" ? 0 : route.answer->body.size();
    keep = co_await SendLocal(*route.answer, request.method == "HEAD",
                              keep && !Draining()) &&
           keep;
  } else {
    keep = co_await Forward(request, head, route, outcome) && keep;
  }
  outcome.elapsed = Clock::now() - started;
  server_.policy().Completed(request, route, outcome);
  co_return keep && !Draining();
}

Task<bool> Session::SendLocal(const LocalResponse& response, bool head_request, bool keep_alive) {
  std::string head = LocalHead(response.status, response.headers, response.body.size(), false,
                               keep_alive);
  std::array<asio::const_buffer, 2> buffers = {
      asio::buffer(head), asio::buffer(response.body.data(), head_request ? 0 : response.body.size())};
  co_return !co_await WriteBuffers(client_, buffers, options_.client_write_timeout);
}

Task<bool> Session::DiscardBody(const ProxyRequest& request) {
  if (request.content_length && *request.content_length > kMaxDiscardBytes) {
    unread_body_ = true;
    co_return false;
  }
  uint64_t left = request.content_length.value_or(0), total = 0;
  ChunkedDecoder chunks;
  for (;;) {
    if (in_.size() == 0) {
      in_.begin = in_.end = 0;
      auto [ec, n] = co_await ReadSome(client_, in_.bytes.get(), loop_.buffers.capacity(),
                                       Clock::now() + options_.client_read_timeout);
      if (ec) co_return false;
      in_.end = n;
    }
    if (!request.chunked) {
      size_t take = static_cast<size_t>(std::min<uint64_t>(left, in_.size()));
      in_.begin += take;
      left -= take;
      if (left == 0) co_return true;
      continue;
    }
    auto step = chunks.Decode(in_.data(), in_.size());
    if (!step.ok() || (total += step->payload) > kMaxDiscardBytes) {
      unread_body_ = true;
      co_return false;
    }
    in_.begin += step->consumed;
    if (chunks.done()) co_return true;
  }
}

Task<Result<UpstreamPtr>> Session::Connect(const std::string& address) {
  size_t colon = address.rfind(':');
  uint16_t port = 0;
  std::string host = colon == std::string::npos ? "" : address.substr(0, colon);
  auto [end, err] = std::from_chars(address.data() + colon + 1, address.data() + address.size(), port);
  if (colon == std::string::npos || host.empty() || err != std::errc() ||
      end != address.data() + address.size()) {
    co_return Status::InvalidArgument("instance address \"" + address +
                                      "\" is not host:port; the instance must be recorded with "
                                      "its port");
  }
  std::vector<tcp::endpoint> endpoints;
  error_code ec;
  auto ip = asio::ip::make_address(host == "localhost" ? "127.0.0.1" : host, ec);
  if (!ec) {
    endpoints.emplace_back(ip, port);
  } else {
    tcp::resolver resolver(loop_.io);
    auto [rec, results] = co_await resolver.async_resolve(host, std::to_string(port), kAwait);
    if (rec) {
      co_return Status::Unavailable(
          fmt::format("cannot resolve {}: {}", host, rec.message()));
    }
    for (const auto& r : results) endpoints.push_back(r.endpoint());
  }
  Status last = Status::Unavailable("no address to connect to for " + address);
  for (const auto& endpoint : endpoints) {
    auto conn = std::make_unique<UpstreamConnection>(tcp::socket(loop_.io), address);
    upstream_ = conn.get();
    conn->watched.write_deadline = Clock::now() + options_.upstream_connect_timeout;
    auto [cec] = co_await conn->watched.socket.async_connect(endpoint, kAwait);
    conn->watched.write_deadline = kNever;
    upstream_ = nullptr;
    if (!cec) {
      error_code ignored;
      conn->watched.socket.set_option(tcp::no_delay(true), ignored);
      TrackPeerClose(conn->watched.socket);
      co_return std::move(conn);
    }
    last = Status::Unavailable(conn->watched.timed_out
                                   ? fmt::format("connecting to {} timed out after {} ms", address,
                                                 options_.upstream_connect_timeout.count())
                                   : fmt::format("cannot connect to {}: {}", address, cec.message()));
    if (forced_) break;
  }
  co_return last;
}

Task<bool> Session::Forward(const ProxyRequest& request, const RequestHead& head,
                            const ProxyRoute& route, ProxyOutcome& outcome) {
  if (request.chunked && in_.size() > 0) {
    // The body bytes that came with the head: when they are already malformed, the request is
    // refused before any upstream hears of it.
    std::string probe(in_.view());
    ChunkedDecoder chunks;
    if (auto step = chunks.Decode(probe.data(), probe.size()); !step.ok()) {
      unread_body_ = true;
      LocalResponse refusal = MalformedBody(step.status());
      outcome.status = 400;
      outcome.body_bytes = refusal.body.size();
      (void)co_await SendLocal(refusal, false, false);
      co_return false;
    }
  }
  for (size_t i = 0; i < route.upstreams.size(); ++i) {
    const std::string& address = route.upstreams[i];
    bool last = i + 1 == route.upstreams.size();
    // A pooled connection the upstream closed in the meantime is replaced once by a new one.
    for (int attempt = 0; attempt < 2; ++attempt) {
      UpstreamPtr upstream =
          route.upgrade || attempt > 0 ? nullptr : loop_.TakeIdle(address, request.has_body());
      if (!upstream) {
        auto made = co_await Connect(address);
        if (!made.ok()) {
          server_.policy().ConnectionFailed(address);
          if (!last && !forced_) {
            ++outcome.retries;
            break;  // on to the next upstream
          }
          Sent sent = co_await Fail(request, route, address, made.status(), false, outcome);
          co_return sent == Sent::kKeep;
        }
        upstream = std::move(made).value();
      }
      outcome.upstream = address;
      upstream_ = upstream.get();
      Sent sent = co_await ForwardOn(*upstream, request, head, route, outcome);
      upstream_ = nullptr;
      if (sent == Sent::kRetryFresh) continue;
      if (upstream_reusable_ && !route.upgrade) {
        loop_.GiveIdle(std::move(upstream), options_.upstream_keepalive);
      } else {
        upstream->watched.Close();
      }
      co_return sent == Sent::kKeep;
    }
  }
  co_return false;
}

// Sends the request on upstream and relays the response; the pump, if one was started, has
// ended when this returns.
Task<Session::Sent> Session::ForwardOn(UpstreamConnection& upstream, const ProxyRequest& request,
                                       const RequestHead& head, const ProxyRoute& route,
                                       ProxyOutcome& outcome) {
  loop_.buffers.Take(out_);
  upstream_reusable_ = false;
  Sent sent = co_await Relay(upstream, request, head, route, outcome);
  co_await StopPump(&upstream);
  loop_.buffers.Give(out_);
  co_return sent;
}

// The client's request body failed while it was being sent upstream (the pump has stopped
// sending): the upstream's request is abandoned with its connection (it never gets the rest, nor
// any byte that was not a valid part of the body). A malformed body is answered 400 while no
// response has begun; a client that broke off or went silent gets nothing.
Task<Session::Sent> Session::ClientBodyFailed(bool response_begun, ProxyOutcome& outcome) {
  co_await StopPump(upstream_);
  if (response_begun) {
    outcome.aborted = true;
    co_return Sent::kClose;
  }
  if (pump_->malformed) {
    unread_body_ = true;
    outcome.status = 400;
    LocalResponse refusal = MalformedBody(pump_->why);
    outcome.body_bytes = refusal.body.size();
    (void)co_await SendLocal(refusal, false, false);
  }
  co_return Sent::kClose;
}

Task<Session::Sent> Session::Fail(const ProxyRequest& request, const ProxyRoute& route,
                                  std::string_view address, const Status& why, bool timed_out,
                                  ProxyOutcome& outcome) {
  if (pump_ && pump_->client_failed) co_return co_await ClientBodyFailed(false, outcome);
  co_await StopPump(upstream_);
  LocalResponse page = server_.policy().UpstreamFailed(request, route, address, why, timed_out);
  outcome.upstream_failure = timed_out ? ProxyOutcome::UpstreamFailure::kTimeout
                                       : ProxyOutcome::UpstreamFailure::kUnreachable;
  outcome.status = page.status;
  outcome.body_bytes = page.body.size();
  // The body the upstream never took is still on its way from the client.
  bool body_left = request.has_body() && !(pump_ && pump_->complete);
  if (body_left) unread_body_ = true;
  bool keep = !body_left && !Draining();
  bool written = co_await SendLocal(page, request.method == "HEAD", keep);
  co_return written && keep ? Sent::kKeep : Sent::kClose;
}

Task<Session::Sent> Session::Relay(UpstreamConnection& upstream, const ProxyRequest& request,
                                   const RequestHead& head, const ProxyRoute& route,
                                   ProxyOutcome& outcome) {
  // ----- the request head, and the body by its own coroutine ---------------------------------
  std::string& out = request_head_;
  out.clear();
  out += request.method;
  out += ' ';
  out += request.target;
  out += " HTTP/1.1\r\n";
  out += route.upstream_fields;
  if (route.upgrade) {
    out += "Connection: Upgrade\r\nUpgrade: ";
    out += request.headers.GetOr("Upgrade", "");
    out += kCrlf;
    out += kCrlf;
  } else {
    AppendFraming(request.has_body() ? request.content_length : std::nullopt, request.chunked,
                  /*keep_alive=*/true, &out);
  }
  if (request.has_body() && head.expect_continue) {
    if (co_await WriteAll(client_, kContinue, options_.client_write_timeout)) co_return Sent::kClose;
  }
  if (error_code ec = co_await WriteAll(upstream.watched, out, options_.upstream_idle_timeout)) {
    if (upstream.reused && !upstream.watched.timed_out) co_return Sent::kRetryFresh;
    co_return co_await Fail(request, route, upstream.address,
                            Status::Unavailable("sending the request failed: " + ec.message()),
                            upstream.watched.timed_out, outcome);
  }
  if (request.has_body()) {
    pump_ = std::make_unique<BodyPump>(loop_.io);
    pump_->running = true;
    pump_->finished.expires_at(kNever);
    asio::co_spawn(loop_.io, Pump(upstream, request), asio::detached);
  }

  // ----- the response head ------------------------------------------------------------------
  Status parsed = Status::Unavailable("no response");
  ResponseHead* response = &response_;
  size_t head_bytes = 0;
  bool any_byte = false;
  for (;;) {
    std::optional<size_t> n = HeadLength(out_.view());
    if (n) {
      parsed = ParseResponseHead(out_.view().substr(0, *n), response);
      head_bytes = *n;
      // Interim responses (100 Continue, 103) are the upstream's business with us.
      if (parsed.ok() && response->status < 200 && response->status != 101) {
        out_.begin += *n;
        continue;
      }
      break;
    }
    if (out_.size() >= MaxHeaderBytes()) {
      parsed = Status::Unavailable("its response head is larger than the limit");
      break;
    }
    out_.Compact();
    auto [ec, got] = co_await ReadSome(upstream.watched, out_.bytes.get() + out_.end,
                                       loop_.buffers.capacity() - out_.end,
                                       Clock::now() + options_.upstream_idle_timeout);
    if (ec) {
      if (pump_ && pump_->client_failed) co_return co_await ClientBodyFailed(false, outcome);
      // An idle connection the upstream closed as we reused it: nothing of ours was processed.
      if (!any_byte && upstream.reused && !request.has_body() && !upstream.watched.timed_out &&
          (ec == asio::error::eof || ec == asio::error::connection_reset)) {
        co_return Sent::kRetryFresh;
      }
      bool timed_out = upstream.watched.timed_out;
      std::string why = timed_out ? fmt::format("it sent nothing for {} ms",
                                                options_.upstream_idle_timeout.count())
                        : ec == asio::error::eof ? "it closed the connection before responding"
                                                 : "reading its response failed: " + ec.message();
      co_return co_await Fail(request, route, upstream.address,
                              timed_out ? Status::DeadlineExceeded(why) : Status::Unavailable(why),
                              timed_out, outcome);
    }
    any_byte = true;
    out_.end += got;
  }
  if (!parsed.ok() || (response->status == 101 && !route.upgrade)) {
    co_return co_await Fail(
        request, route, upstream.address,
        Status::Unavailable(parsed.ok() ? "it switched protocols unasked"
                                        : "its response is malformed: " + parsed.message()),
        false, outcome);
  }
  out_.begin += head_bytes;
  if (response->status == 101) co_return co_await Tunnel(upstream, *response, request, outcome);

  // ----- the response body ------------------------------------------------------------------
  enum class Framing { kNone, kLength, kChunked, kUntilClose };
  Framing from = !ResponseHasBody(request.method, response->status) ? Framing::kNone
                 : response->chunked                                ? Framing::kChunked
                 : response->content_length                         ? Framing::kLength
                                                                    : Framing::kUntilClose;
  bool to_chunked = (from == Framing::kChunked || from == Framing::kUntilClose) &&
                    head.version_minor == 1;
  bool close_delimited = (from == Framing::kChunked || from == Framing::kUntilClose) && !to_chunked;
  bool keep = head.keep_alive && !close_delimited && !Draining();
  std::optional<uint64_t> length;
  if (from == Framing::kLength ||
      (from == Framing::kNone && request.method == "HEAD" && response->content_length)) {
    length = response->content_length;
  }
  // The head goes out from the bytes it was parsed from, before out_ takes more.
  std::string& client_head = client_head_;
  client_head.clear();
  AppendStatusLine(response->status, &client_head);
  // Content-Length too: the engine writes its own.
  AppendEndToEndFields(response->fields, {"Content-Length"}, &client_head);
  AppendFraming(length, to_chunked, keep, &client_head);
  outcome.status = response->status;
  bool head_sent = false;
  bool upstream_done = from == Framing::kNone;
  uint64_t left = from == Framing::kLength ? *response->content_length : 0;
  ChunkedDecoder chunks;
  std::string size_line;
  auto abort_client = [&] {
    outcome.aborted = true;
    return Sent::kClose;
  };
  auto upstream_broke = [&] {
    outcome.upstream_failure = ProxyOutcome::UpstreamFailure::kBroken;
    return abort_client();
  };
  for (;;) {
    // What is in out_ now goes to the client (after the head, the first time).
    size_t payload = 0;
    size_t consumed = 0;
    if (from == Framing::kLength) {
      payload = consumed = static_cast<size_t>(std::min<uint64_t>(left, out_.size()));
      left -= payload;
      upstream_done = left == 0;
    } else if (from == Framing::kChunked) {
      auto step = chunks.Decode(out_.data(), out_.size());
      if (!step.ok()) {
        if (!head_sent) {
          co_return co_await Fail(request, route, upstream.address, step.status(), false, outcome);
        }
        spdlog::warn("proxy: upstream {} sent a malformed chunked body: {}", upstream.address,
                     step.status().message());
        co_return upstream_broke();
      }
      payload = step->payload;
      consumed = step->consumed;
      upstream_done = chunks.done();
    } else if (from == Framing::kUntilClose) {
      payload = consumed = out_.size();
    }
    std::array<asio::const_buffer, 5> buffers;
    size_t count = 0;
    if (!head_sent) buffers[count++] = asio::buffer(client_head);
    if (payload > 0) {
      if (to_chunked) {
        size_line = ChunkSizeLine(payload);
        buffers[count++] = asio::buffer(size_line);
      }
      buffers[count++] = asio::buffer(out_.data(), payload);
      if (to_chunked) buffers[count++] = asio::buffer(kCrlf.data(), kCrlf.size());
    }
    if (upstream_done && to_chunked) buffers[count++] = asio::buffer(kLastChunk.data(), kLastChunk.size());
    if (count > 0) {
      auto span = std::span(buffers.data(), count);
      if (co_await WriteBuffers(client_, span, options_.client_write_timeout)) {
        co_return abort_client();  // the client went away or stopped reading
      }
      head_sent = true;
      outcome.body_bytes += payload;
    }
    out_.begin += consumed;
    if (upstream_done) break;
    if (out_.size() == 0) out_.begin = out_.end = 0;
    out_.Compact();
    auto [ec, got] = co_await ReadSome(upstream.watched, out_.bytes.get() + out_.end,
                                       loop_.buffers.capacity() - out_.end,
                                       Clock::now() + options_.upstream_idle_timeout);
    if (ec == asio::error::eof && from == Framing::kUntilClose) {
      if (to_chunked && co_await WriteAll(client_, kLastChunk, options_.client_write_timeout)) {
        co_return abort_client();
      }
      break;
    }
    if (ec) {
      if (!(pump_ && pump_->client_failed)) {
        spdlog::warn("proxy: upstream {} broke in the middle of the response to {} {}: {}",
                     upstream.address, request.method, request.target,
                     upstream.watched.timed_out ? "it went silent" : ec.message());
        co_return upstream_broke();
      }
      co_return co_await ClientBodyFailed(head_sent, outcome);
    }
    out_.end += got;
  }
  // The upstream's connection carries the next request only when this exchange ended cleanly.
  bool body_sent = !request.has_body() || (pump_ && pump_->complete);
  if (!body_sent) {
    unread_body_ = true;  // the upstream answered without reading it all
    co_return Sent::kClose;
  }
  // The client's connection may go on even when the upstream's may not.
  upstream_reusable_ = from != Framing::kUntilClose && !response->close &&
                       response->version_minor == 1 && out_.size() == 0;
  co_return keep ? Sent::kKeep : Sent::kClose;
}

Task<Session::Sent> Session::Tunnel(UpstreamConnection& upstream, const ResponseHead& response,
                                    const ProxyRequest& request, ProxyOutcome& outcome) {
  std::string head;
  AppendStatusLine(101, &head);
  AppendEndToEndFields(response.fields, {"Content-Length"}, &head);
  head += "Connection: Upgrade\r\nUpgrade: ";
  head += response.Get("Upgrade").value_or(request.headers.GetOr("Upgrade", ""));
  head += kCrlf;
  head += kCrlf;
  std::array<asio::const_buffer, 2> first = {asio::buffer(head), asio::buffer(out_.data(), out_.size())};
  outcome.status = 101;
  if (co_await WriteBuffers(client_, first, options_.client_write_timeout)) co_return Sent::kClose;
  out_.begin = out_.end = 0;
  if (in_.size() > 0) {
    if (co_await WriteAll(upstream.watched, in_.view(), options_.upstream_idle_timeout)) {
      co_return Sent::kClose;
    }
    in_.begin = in_.end = 0;
  }
  // Both directions at once; whichever ends first ends the other (Copy closes both sockets).
  pump_ = std::make_unique<BodyPump>(loop_.io);
  pump_->running = true;
  pump_->finished.expires_at(kNever);
  BodyPump* pump = pump_.get();
  asio::co_spawn(
      loop_.io,
      [this, &upstream, pump]() -> Task<void> {
        co_await Copy(client_, in_, upstream.watched, options_.upstream_idle_timeout);
        pump->running = false;
        pump->finished.cancel();
      },
      asio::detached);
  co_await Copy(upstream.watched, out_, client_, options_.client_write_timeout);
  co_await StopPump(&upstream);
  co_return Sent::kClose;
}

// Copies bytes until either side ends, then ends both.
Task<void> Session::Copy(Watched& from, Buffer& buffer, Watched& to, Millis write_timeout) {
  for (;;) {
    auto [ec, got] = co_await ReadSome(from, buffer.bytes.get(), loop_.buffers.capacity(), kNever);
    if (ec) break;
    if (co_await WriteAll(to, std::string_view(buffer.bytes.get(), got), write_timeout)) break;
  }
  error_code ignored;
  from.socket.shutdown(tcp::socket::shutdown_both, ignored);
  to.socket.shutdown(tcp::socket::shutdown_both, ignored);
  from.socket.cancel(ignored);
  to.socket.cancel(ignored);
}

// Sends the client's request body upstream: the bytes already buffered first, then as they
// arrive, each only once the upstream took the previous ones.
Task<void> Session::Pump(UpstreamConnection& upstream, const ProxyRequest& request) {
  BodyPump& pump = *pump_;
  uint64_t left = request.content_length.value_or(0);
  uint64_t total = 0;
  ChunkedDecoder chunks;
  std::string size_line;
  for (;;) {
    if (in_.size() == 0) {
      in_.begin = in_.end = 0;
      auto [ec, n] = co_await ReadSome(client_, in_.bytes.get(), loop_.buffers.capacity(),
                                       Clock::now() + options_.client_read_timeout);
      if (ec) {
        pump.client_failed = !pump.stopping;
        pump.why = Status::Unavailable(client_.timed_out ? "the client went silent mid-body"
                                                         : "the client broke off: " + ec.message());
        break;
      }
      in_.end = n;
    }
    error_code wec;
    if (!request.chunked) {
      size_t take = static_cast<size_t>(std::min<uint64_t>(left, in_.size()));
      wec = co_await WriteAll(upstream.watched, std::string_view(in_.data(), take),
                              options_.upstream_idle_timeout);
      in_.begin += take;
      left -= take;
      if (!wec && left == 0) pump.complete = true;
    } else {
      auto step = chunks.Decode(in_.data(), in_.size());
      if (!step.ok() || (total += step->payload) > options_.max_body_bytes) {
        pump.client_failed = true;
        pump.malformed = !step.ok();
        pump.why = step.ok() ? Status::ResourceExhausted("the request body is too large")
                             : step.status();
        break;
      }
      std::array<asio::const_buffer, 4> buffers;
      size_t count = 0;
      if (step->payload > 0) {
        size_line = ChunkSizeLine(step->payload);
        buffers[count++] = asio::buffer(size_line);
        buffers[count++] = asio::buffer(in_.data(), step->payload);
        buffers[count++] = asio::buffer(kCrlf.data(), kCrlf.size());
      }
      if (chunks.done()) buffers[count++] = asio::buffer(kLastChunk.data(), kLastChunk.size());
      if (count > 0) {
        wec = co_await WriteBuffers(upstream.watched, std::span(buffers.data(), count),
                                options_.upstream_idle_timeout);
      }
      in_.begin += step->consumed;
      if (!wec && chunks.done()) pump.complete = true;
    }
    if (wec || pump.complete) break;  // a write failure: the upstream says why in its response
  }
  if (pump.client_failed) {
    // The response reader is waiting on the upstream: wake it, nobody is left to answer.
    error_code ignored;
    upstream.watched.socket.cancel(ignored);
  }
  pump.running = false;
  pump.finished.cancel();
}

Task<void> Session::StopPump(UpstreamConnection* upstream) {
  if (!pump_ || !pump_->running) co_return;
  pump_->stopping = true;
  error_code ignored;
  if (upstream != nullptr) upstream->watched.socket.cancel(ignored);
  client_.socket.cancel(ignored);
  while (pump_->running) (void)co_await pump_->finished.async_wait(kAwait);
  client_.timed_out = false;
}

Task<void> Session::Close() {
  pump_.reset();
  loop_.buffers.Give(out_);
  error_code ignored;
  if (unread_body_ && !forced_ && client_.socket.is_open()) {
    // Closing with unread bytes makes the kernel send RST, which can destroy the response just
    // sent before the client reads it: stop sending, drop what still arrives, briefly.
    client_.socket.shutdown(tcp::socket::shutdown_send, ignored);
    loop_.buffers.Take(in_);
    auto deadline = Clock::now() + Millis(500);
    for (size_t drained = 0; drained < (1u << 20);) {
      auto [ec, n] = co_await ReadSome(client_, in_.bytes.get(), loop_.buffers.capacity(), deadline);
      if (ec) break;
      drained += n;
    }
  }
  loop_.buffers.Give(in_);
  client_.Close();
}

// ----- the server ---------------------------------------------------------------------------

void RaiseFileLimit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur >= limit.rlim_max) return;
  limit.rlim_cur = limit.rlim_max;
  if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) {
    spdlog::warn("proxy: cannot raise the open file limit: {}", std::strerror(errno));
  }
}

Millis Server::SweepInterval() const {
  Millis shortest = std::min({options_.header_timeout, options_.client_read_timeout,
                              options_.client_write_timeout, options_.client_idle_timeout,
                              options_.upstream_connect_timeout, options_.upstream_idle_timeout});
  return std::clamp(shortest / 4, Millis(5), Millis(250));
}

Status Server::Bind() {
  size_t threads = options_.threads > 0 ? options_.threads
                                        : std::max(1u, std::thread::hardware_concurrency());
  size_t buffer_bytes = std::max(kBufferBytes, options_.max_header_bytes + 4);
  for (size_t i = 0; i < threads; ++i) loops_.push_back(std::make_unique<Loop>(buffer_bytes));

  size_t colon = options_.listen.rfind(':');
  uint16_t port = 0;
  error_code ec;
  asio::ip::address ip;
  if (colon != std::string::npos) {
    std::string host = options_.listen.substr(0, colon);
    ip = asio::ip::make_address(host == "localhost" ? "127.0.0.1" : host, ec);
    auto [end, err] = std::from_chars(options_.listen.data() + colon + 1,
                                      options_.listen.data() + options_.listen.size(), port);
    if (err != std::errc() || end != options_.listen.data() + options_.listen.size()) {
      ec = asio::error::invalid_argument;
    }
  }
  if (colon == std::string::npos || ec) {
    return Status::InvalidArgument("cannot listen on \"" + options_.listen +
                                   "\": give an IP address and port, e.g. 127.0.0.1:8080");
  }
  acceptor_ = std::make_unique<tcp::acceptor>(loops_[0]->io);
  tcp::endpoint endpoint(ip, port);
  acceptor_->open(endpoint.protocol(), ec);
  if (!ec) acceptor_->set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor_->bind(endpoint, ec);
  if (!ec) acceptor_->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return Status::Unavailable(
        fmt::format("cannot listen on {}: {}", options_.listen, ec.message()));
  }
  port_ = acceptor_->local_endpoint().port();
  address_ = fmt::format("{}:{}", ip.to_string(), port_);
  RaiseFileLimit();
  return Status::Ok();
}

void Server::Run() {
  running_ = true;
  asio::co_spawn(loops_[0]->io, Accept(), asio::detached);
  for (auto& loop : loops_) {
    asio::co_spawn(loop->io, Sweep(*loop), asio::detached);
    Loop* l = loop.get();
    loop->thread = std::thread([l] {
      auto work = asio::make_work_guard(l->io);
      l->io.run();
    });
  }
}

Task<void> Server::Accept() {
  size_t next = 0;
  asio::steady_timer pause(loops_[0]->io);
  for (;;) {
    Loop& target = *loops_[next++ % loops_.size()];
    auto [ec, socket] = co_await acceptor_->async_accept(target.io, kAwait);
    if (stopping_) co_return;
    if (ec) {
      if (ec == asio::error::operation_aborted) co_return;
      // Out of descriptors or memory: pause instead of spinning; the backlog holds the rest.
      spdlog::warn("proxy {}: accepting a connection failed: {}", address_, ec.message());
      pause.expires_after(Millis(50));
      (void)co_await pause.async_wait(kAwait);
      continue;
    }
    if (live_.load() >= options_.max_connections) {
      static constexpr std::string_view kBusy =
          "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 62\r\n"
          "Connection: close\r\nRetry-After: 1\r\n\r\n"
          "503: the gateway has too many connections; retry in a moment.\n";
      (void)::send(socket.native_handle(), kBusy.data(), kBusy.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
      error_code ignored;
      socket.close(ignored);
      continue;
    }
    ++live_;
    error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    asio::co_spawn(target.io, Serve(*this, target, std::move(socket)), asio::detached);
  }
}

Task<void> Server::Sweep(Loop& loop) {
  asio::steady_timer timer(loop.io);
  Millis interval = SweepInterval();
  for (;;) {
    timer.expires_after(interval);
    auto [ec] = co_await timer.async_wait(kAwait);
    if (ec || stopping_) co_return;
    auto now = Clock::now();
    for (Session* s : loop.sessions) s->CheckDeadlines(now);
    loop.ExpireIdle(now, options_.upstream_keepalive_timeout);
    loop.buffers.Trim(now);
  }
}

void Server::OnEveryLoop(const std::function<void(Loop&)>& fn) {
  for (auto& loop : loops_) {
    std::promise<void> done;
    asio::post(loop->io, [&] {
      fn(*loop);
      done.set_value();
    });
    done.get_future().wait();
  }
}

void Server::Shutdown(std::chrono::milliseconds grace) {
  {
    std::lock_guard lock(mu_);
    if (shut_down_ || !running_) return;
    shut_down_ = true;
  }
  draining_ = true;
  asio::post(loops_[0]->io, [this] {
    error_code ignored;
    acceptor_->close(ignored);
  });
  OnEveryLoop([](Loop& loop) {
    loop.shutting_down = true;
    for (Session* s : loop.sessions) s->CloseIfIdle();
  });
  {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, grace, [&] { return live_.load() == 0; });
  }
  stopping_ = true;
  OnEveryLoop([](Loop& loop) {
    for (Session* s : loop.sessions) s->ForceClose();
    for (auto& [address, idle] : loop.idle_upstreams) {
      for (auto& c : idle) c->watched.Close();
    }
    loop.idle_upstreams.clear();
  });
  {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, Millis(2'000), [&] { return live_.load() == 0; });
  }
  for (auto& loop : loops_) {
    loop->io.stop();
    if (loop->thread.joinable()) loop->thread.join();
  }
}

}  // namespace

Result<std::unique_ptr<ProxyServer>> ProxyServer::Start(ProxyServerOptions options,
                                                        ProxyPolicy& policy) {
  if (options.max_connections == 0 || options.max_header_bytes == 0 ||
      options.header_timeout.count() <= 0 || options.client_read_timeout.count() <= 0 ||
      options.client_write_timeout.count() <= 0 || options.client_idle_timeout.count() <= 0 ||
      options.upstream_connect_timeout.count() <= 0 || options.upstream_idle_timeout.count() <= 0 ||
      options.upstream_keepalive_timeout.count() <= 0) {
    return Status::InvalidArgument(
        "the proxy needs max_connections, max_header_bytes and every timeout above zero; fix "
        "the gateway's settings");
  }
  auto server = std::make_unique<Server>(std::move(options), policy);
  SLIPWAY_RETURN_IF_ERROR(server->Bind());
  server->Run();
  return std::unique_ptr<ProxyServer>(std::move(server));
}

}  // namespace slipway::net
