#include "net/http_client.h"

#include <curl/curl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <random>
#include <thread>
#include <unordered_map>
#include <vector>

namespace slipway::net {

namespace detail {

// Idle easy handles by origin. An easy handle keeps its connections alive between transfers,
// so handing a finished handle to the next request for the same origin, whatever its thread,
// reuses the connection. A handle is only ever used by one thread at a time (libcurl's rule).
class CurlHandlePool {
 public:
  ~CurlHandlePool() {
    for (auto& [origin, handles] : idle_) {
      for (CURL* h : handles) curl_easy_cleanup(h);
    }
  }
  // An idle handle for origin, or a new one (null when libcurl is out of memory).
  CURL* Take(const std::string& origin) {
    {
      std::lock_guard lock(mu_);
      auto it = idle_.find(origin);
      if (it != idle_.end() && !it->second.empty()) {
        CURL* h = it->second.back();
        it->second.pop_back();
        curl_easy_reset(h);  // keeps its connections
        return h;
      }
    }
    return curl_easy_init();
  }
  void Give(const std::string& origin, CURL* h) {
    {
      std::lock_guard lock(mu_);
      auto& handles = idle_[origin];
      if (handles.size() < kMaxIdlePerOrigin) {
        handles.push_back(h);
        return;
      }
    }
    curl_easy_cleanup(h);
  }

 private:
  static constexpr size_t kMaxIdlePerOrigin = 256;
  std::mutex mu_;
  std::unordered_map<std::string, std::vector<CURL*>> idle_;
};

}  // namespace detail

namespace {

void InitCurlOnce() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_ALL); });
}

// One easy handle per thread, reset between calls: curl_easy_reset keeps the handle's
// connection and DNS caches, so consecutive calls from a thread reuse keep-alive connections.
// A call made from inside a callback of another call on the same thread (nesting) gets a fresh
// handle instead of clobbering the one in use.
class EasyHandle {
 public:
  // From pool when given (returned to it afterwards), else this thread's cached handle.
  EasyHandle(detail::CurlHandlePool* pool, std::string origin)
      : pool_(pool), origin_(std::move(origin)) {
    if (pool_ != nullptr) {
      handle_ = pool_->Take(origin_);
      return;
    }
    if (!cached_.in_use && cached_.handle != nullptr) {
      handle_ = cached_.handle;
      cached_.in_use = true;
      owned_ = false;
      curl_easy_reset(handle_);
    } else if (!cached_.in_use) {
      cached_.handle = curl_easy_init();
      handle_ = cached_.handle;
      cached_.in_use = true;
      owned_ = false;
    } else {
      handle_ = curl_easy_init();
      owned_ = true;
    }
  }
  ~EasyHandle() {
    if (pool_ != nullptr) {
      if (handle_ != nullptr) pool_->Give(origin_, handle_);
      return;
    }
    if (owned_) {
      curl_easy_cleanup(handle_);
    } else {
      cached_.in_use = false;
    }
  }
  EasyHandle(const EasyHandle&) = delete;
  EasyHandle& operator=(const EasyHandle&) = delete;
  CURL* get() const { return handle_; }

 private:
  struct Cache {
    CURL* handle = nullptr;
    bool in_use = false;
    ~Cache() {
      if (handle != nullptr) curl_easy_cleanup(handle);
    }
  };
  static thread_local Cache cached_;
  detail::CurlHandlePool* pool_ = nullptr;
  std::string origin_;
  CURL* handle_ = nullptr;
  bool owned_ = false;
};

// "http://127.0.0.1:9000/b/k?x" -> "http://127.0.0.1:9000": what a kept-alive connection is for.
std::string OriginOf(const ClientRequest& r) {
  std::string_view url = r.url;
  size_t scheme = url.find("://");
  size_t start = scheme == std::string_view::npos ? 0 : scheme + 3;
  size_t end = url.find_first_of("/?#", start);
  std::string origin(url.substr(0, end));
  if (!r.unix_socket.empty()) origin = "unix:" + r.unix_socket + " " + origin;
  return origin;
}
thread_local EasyHandle::Cache EasyHandle::cached_;

struct SlistDeleter {
  void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};
using Slist = std::unique_ptr<curl_slist, SlistDeleter>;

struct FileCloser {
  void operator()(FILE* f) const {
    if (f != nullptr) std::fclose(f);
  }
};
using File = std::unique_ptr<FILE, FileCloser>;

bool IsIdempotentMethod(std::string_view method) {
  return method == "GET" || method == "HEAD" || method == "PUT" || method == "DELETE" ||
         method == "OPTIONS";
}

bool IsRetryableStatus(int status) { return status == 502 || status == 503 || status == 504; }

// Everything one attempt needs inside curl's callbacks.
struct Attempt {
  const ClientRequest* request = nullptr;
  // Body source: exactly one of these is used.
  size_t memory_offset = 0;
  File body_file;
  // Response sink.
  ClientResponse response;
  File response_file;         // the temp file while downloading
  std::string response_temp;  // its path
  // A 502/503/504 that will be retried: its body is dropped so that a file or callback sees
  // only the final response.
  bool retry_possible = false;
  bool discard_body = false;
  bool body_decided = false;
  bool to_memory = true;
  uint64_t received = 0;
  bool response_started = false;  // any response byte arrived (status line included)
  bool headers_delivered = false;  // on_headers ran for the current response
  Status callback_status;         // why a callback stopped the transfer
};

size_t ReadBody(char* buf, size_t size, size_t nitems, void* userdata) {
  auto* a = static_cast<Attempt*>(userdata);
  const ClientRequest& r = *a->request;
  size_t n = size * nitems;
  if (!r.body_file.empty()) {
    size_t got = std::fread(buf, 1, n, a->body_file.get());
    if (got == 0 && std::ferror(a->body_file.get())) {
      a->callback_status = Status::Internal("reading the request body from \"" + r.body_file +
                                            "\" failed: " + std::strerror(errno) +
                                            "; check that the file is readable.");
      return CURL_READFUNC_ABORT;
    }
    return got;
  }
  if (r.body_source) {
    Result<size_t> got = r.body_source(buf, n);
    if (!got.ok()) {
      a->callback_status = got.status().WithContext("producing the request body");
      return CURL_READFUNC_ABORT;
    }
    return std::min(*got, n);
  }
  size_t left = r.body.size() - a->memory_offset;
  size_t take = std::min(left, n);
  std::memcpy(buf, r.body.data() + a->memory_offset, take);
  a->memory_offset += take;
  return take;
}

// Header lines arrive one per call, status lines included; an interim response (100 Continue)
// is followed by the real one, so a status line starts the header set afresh.
size_t ReadHeader(char* data, size_t size, size_t nitems, void* userdata) {
  auto* a = static_cast<Attempt*>(userdata);
  size_t n = size * nitems;
  a->response_started = true;
  std::string_view line(data, n);
  while (!line.empty() && (line.back() == '\r' || line.back() == '\n')) line.remove_suffix(1);
  if (line.empty()) {
    // The end of a header section: the final response's is handed to on_headers. Trailers of a
    // chunked body also end with an empty line; headers_delivered keeps them from a second call.
    const ClientRequest& r = *a->request;
    if (r.on_headers && !a->headers_delivered && a->response.status >= 200 && !a->discard_body) {
      a->headers_delivered = true;
      if (!r.on_headers(a->response.status, a->response.headers)) {
        a->callback_status =
            Status::Canceled("the caller stopped the response from " + r.url + " at its headers.");
        return 0;
      }
    }
    return n;
  }
  if (line.starts_with("HTTP/")) {
    a->response.headers = Headers();
    a->headers_delivered = false;
    size_t sp = line.find(' ');
    if (sp != std::string_view::npos) a->response.status = std::atoi(line.data() + sp + 1);
    a->discard_body = a->retry_possible && IsRetryableStatus(a->response.status);
    return n;
  }
  size_t colon = line.find(':');
  if (colon == std::string_view::npos) return n;
  std::string_view name = line.substr(0, colon);
  std::string_view value = line.substr(colon + 1);
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
  a->response.headers.Add(std::string(name), std::string(value));
  return n;
}

size_t WriteBody(char* data, size_t size, size_t nmemb, void* userdata) {
  auto* a = static_cast<Attempt*>(userdata);
  const ClientRequest& r = *a->request;
  size_t n = size * nmemb;
  a->response_started = true;
  if (a->discard_body) return n;
  if (!a->body_decided) {
    // The status is known once body bytes flow. A file receives only a successful body: an
    // error page written over the caller's download target would pass for the content.
    a->body_decided = true;
    int status = a->response.status;
    a->to_memory = !r.on_body && (r.response_file.empty() || status < 200 || status > 299);
    if (!a->to_memory && !r.on_body) {
      std::filesystem::path target(r.response_file);
      a->response_temp = target.string() + ".partial-" + std::to_string(::getpid()) + "-" +
                         std::to_string(std::hash<std::thread::id>()(std::this_thread::get_id()));
      a->response_file.reset(std::fopen(a->response_temp.c_str(), "wb"));
      if (!a->response_file) {
        a->callback_status =
            Status::Internal("cannot create \"" + a->response_temp +
                             "\" to receive the response: " + std::strerror(errno) +
                             "; check that the directory exists and is writable.");
        return 0;
      }
    }
  }
  a->received += n;
  if (a->to_memory) {
    if (a->received > r.max_response_bytes) {
      a->callback_status = Status::ResourceExhausted(
          "the response from " + r.url + " is larger than the limit of " +
          std::to_string(r.max_response_bytes) +
          " bytes; raise max_response_bytes or stream it to a file or callback.");
      return 0;
    }
    a->response.body.append(data, n);
    return n;
  }
  if (r.on_body) {
    if (!r.on_body(std::string_view(data, n))) {
      a->callback_status =
          Status::Canceled("the caller stopped reading the response from " + r.url + ".");
      return 0;
    }
    return n;
  }
  if (std::fwrite(data, 1, n, a->response_file.get()) != n) {
    a->callback_status =
        Status::Internal("writing the response to \"" + a->response_temp +
                         "\" failed: " + std::strerror(errno) + "; check free disk space.");
    return 0;
  }
  return n;
}

int CheckCancelled(void* userdata, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* a = static_cast<Attempt*>(userdata);
  if (!a->request->cancelled()) return 0;
  a->callback_status = Status::Canceled("the request was cancelled by its caller");
  return 1;
}

int ConnectionReady(void* userdata, char*, char*, int, int) {
  auto* a = static_cast<Attempt*>(userdata);
  a->request->on_connected();
  return CURL_PREREQFUNC_OK;
}

// Turns a curl failure into a Status a person can act on.
Status TransportError(const ClientRequest& r, CURLcode code, const char* detail) {
  std::string what = r.method + " " + r.url;
  if (!r.unix_socket.empty()) what += " (unix socket " + r.unix_socket + ")";
  std::string why = detail[0] != '\0' ? detail : curl_easy_strerror(code);
  switch (code) {
    case CURLE_OPERATION_TIMEDOUT:
      return Status::DeadlineExceeded(
          what + " timed out: " + why +
          "; check that the server is responsive or raise the timeout.");
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
      return Status::InvalidArgument(what + " cannot be sent: " + why + "; fix the URL.");
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
      return Status::Unavailable(what + " failed: " + why +
                                 "; check that the server is running and reachable.");
    default:
      return Status::Unavailable(what + " failed: " + why +
                                 "; the connection broke, check the server's logs and retry.");
  }
}

struct AttemptOutcome {
  Result<ClientResponse> result = Status::Internal("no attempt was made");
  bool retryable = false;  // the failure is one a retry may cure
};

AttemptOutcome RunAttempt(const ClientRequest& r, bool retry_possible,
                          detail::CurlHandlePool* pool) {
  AttemptOutcome out;
  Attempt a;
  a.request = &r;
  a.retry_possible = retry_possible;
  EasyHandle easy(pool, pool != nullptr ? OriginOf(r) : std::string());
  CURL* h = easy.get();
  if (h == nullptr) {
    out.result =
        Status::Internal("libcurl could not create a handle; the process may be out of memory.");
    return out;
  }
  char error[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_URL, r.url.c_str());
  // The path goes out as given: "/a/../b" is an object key or a proxied path, not ours to squash.
  curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);
  if (!r.unix_socket.empty()) curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, r.unix_socket.c_str());
  if (!r.ca_file.empty()) curl_easy_setopt(h, CURLOPT_CAINFO, r.ca_file.c_str());
  if (!r.client_cert_file.empty()) curl_easy_setopt(h, CURLOPT_SSLCERT, r.client_cert_file.c_str());
  if (!r.client_key_file.empty()) curl_easy_setopt(h, CURLOPT_SSLKEY, r.client_key_file.c_str());

  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(r.connect_timeout.count()));
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(r.timeout.count()));
  if (r.low_speed_timeout.count() > 0) {
    long secs = static_cast<long>((r.low_speed_timeout.count() + 999) / 1000);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, secs);
  }

  // The body: every method but a body-less GET/HEAD goes through the read callback, so memory,
  // file and streaming bodies share one path and a body-less POST still says Content-Length: 0.
  bool has_body = !r.body.empty() || !r.body_file.empty() || static_cast<bool>(r.body_source);
  std::optional<uint64_t> size;
  if (!r.body_file.empty()) {
    a.body_file.reset(std::fopen(r.body_file.c_str(), "rb"));
    if (!a.body_file) {
      out.result = Status::NotFound("cannot open the request body file \"" + r.body_file +
                                    "\": " + std::strerror(errno) + "; check the path.");
      return out;
    }
    std::error_code ec;
    uint64_t file_size = std::filesystem::file_size(r.body_file, ec);
    size = r.body_size ? *r.body_size : (ec ? 0 : file_size);
  } else if (r.body_source) {
    size = r.body_size;  // unset: sent chunked
  } else {
    size = r.body.size();
  }
  if (r.method == "HEAD") {
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  } else if (r.method == "GET" && !has_body) {
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
  } else {
    curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(h, CURLOPT_READFUNCTION, ReadBody);
    curl_easy_setopt(h, CURLOPT_READDATA, &a);
    if (size) curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(*size));
  }
  // With a body curl would say PUT unless told otherwise, so a GET with a body names itself too.
  if (r.method != "GET" || has_body) curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, r.method.c_str());

  curl_slist* raw = nullptr;
  for (const auto& [name, value] : r.headers) {
    // curl drops "Name:" (that syntax removes a header); "Name;" sends it empty.
    std::string line = value.empty() ? name + ";" : name + ": " + value;
    raw = curl_slist_append(raw, line.c_str());
  }
  // curl would add "Expect: 100-continue" to larger uploads on its own and then wait for the
  // interim response; only callers who ask for it get it.
  if (!r.headers.Has("Expect")) raw = curl_slist_append(raw, "Expect:");
  // Without a Content-Type curl sends none for uploads, which is what we want; but it does add
  // "Transfer-Encoding: chunked" itself when the size is unknown.
  Slist headers(raw);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers.get());

  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, ReadHeader);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &a);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, WriteBody);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &a);
  if (r.on_connected) {
    curl_easy_setopt(h, CURLOPT_PREREQFUNCTION, ConnectionReady);
    curl_easy_setopt(h, CURLOPT_PREREQDATA, &a);
  }

  if (r.cancelled) {
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, CheckCancelled);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, &a);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
  }

  CURLcode rc = curl_easy_perform(h);
  // The handle outlives this call; it must not keep pointers into this frame.
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, nullptr);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, nullptr);

  auto drop_temp = [&] {
    if (!a.response_temp.empty()) {
      a.response_file.reset();
      std::remove(a.response_temp.c_str());
    }
  };

  if (rc != CURLE_OK) {
    drop_temp();
    if (!a.callback_status.ok()) {
      out.result = a.callback_status;
      return out;
    }
    out.result = TransportError(r, rc, error);
    // Only failures before any response byte are retried: a response in progress may be a
    // partial success nobody should repeat. Timeouts are not retried either: the caller's time
    // budget is spent, and a retry would multiply it.
    out.retryable = !a.response_started && out.result.status().code() == Code::kUnavailable;
    return out;
  }

  long status = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  a.response.status = static_cast<int>(status);
  if (retry_possible && IsRetryableStatus(a.response.status)) {
    drop_temp();
    out.result = std::move(a.response);
    out.retryable = true;
    return out;
  }

  if (!a.response_temp.empty()) {
    FILE* f = a.response_file.release();
    bool write_ok = std::fflush(f) == 0;
    write_ok = (std::fclose(f) == 0) && write_ok;
    std::error_code ec;
    if (write_ok) std::filesystem::rename(a.response_temp, r.response_file, ec);
    if (!write_ok || ec) {
      std::remove(a.response_temp.c_str());
      out.result = Status::Internal(
          "saving the response from " + r.url + " to \"" + r.response_file + "\" failed" +
          (ec ? ": " + ec.message() : std::string()) + "; check free disk space and permissions.");
      return out;
    }
  } else if (!r.response_file.empty() && !r.on_body && a.response.status >= 200 &&
             a.response.status <= 299 && !a.body_decided) {
    // A successful empty body still produces the (empty) file the caller asked for.
    File empty(std::fopen(r.response_file.c_str(), "wb"));
    if (!empty) {
      out.result =
          Status::Internal("cannot create \"" + r.response_file + "\": " + std::strerror(errno) +
                           "; check that the directory exists.");
      return out;
    }
  }
  out.result = std::move(a.response);
  return out;
}

}  // namespace

HttpClient::HttpClient(ConnectionReuse reuse) {
  InitCurlOnce();
  if (reuse == ConnectionReuse::kShared) pool_ = std::make_unique<detail::CurlHandlePool>();
}
HttpClient::~HttpClient() = default;

Result<ClientResponse> HttpClient::Do(const ClientRequest& request) {
  int given = 0;
  given += !request.body.empty();
  given += !request.body_file.empty();
  given += static_cast<bool>(request.body_source);
  if (given > 1) {
    return Status::InvalidArgument(
        "an HTTP request may take its body from only one of body, body_file and body_source; "
        "set just one.");
  }
  if (!request.response_file.empty() && request.on_body) {
    return Status::InvalidArgument(
        "an HTTP response goes either to response_file or to on_body; set just one.");
  }
  bool idempotent = request.idempotent.value_or(IsIdempotentMethod(request.method));
  bool replayable = !request.body_source;
  int attempts = (idempotent && replayable) ? std::max(1, request.max_attempts) : 1;

  thread_local std::mt19937 rng(std::random_device{}());
  auto backoff = request.initial_backoff;
  for (int attempt = 1;; ++attempt) {
    bool last = attempt >= attempts;
    AttemptOutcome outcome = RunAttempt(request, !last, pool_.get());
    if (last || !outcome.retryable) return std::move(outcome.result);
    // Jitter (up to +25%) keeps many clients that failed together from retrying together.
    std::uniform_int_distribution<long> jitter(0, backoff.count() / 4);
    std::this_thread::sleep_for(backoff + std::chrono::milliseconds(jitter(rng)));
    backoff *= 2;
  }
}

}  // namespace slipway::net
