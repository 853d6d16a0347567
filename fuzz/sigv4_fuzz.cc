// SigV4 verification: the Authorization header, presigned query parameters and HTTP dates.
//
// Input: a mode byte, then the request as lines: method, target, then "name: value" header
// lines. Mode 0 verifies the request as sent (any header or query must give a VerifiedRequest
// or an AuthFailure, never a crash). Modes 1 and 2 first sign it the way our client does
// (SignRequest / Presign) and then check the promise that matters: a request we signed ourselves
// verifies, whatever its path, query and headers.
#include <boost/url/parse.hpp>
#include <cstdio>
#include <cstdlib>

#include "fuzz_input.h"
#include "net/http_server.h"
#include "storage/sigv4.h"

namespace {

using namespace slipway;

constexpr std::string_view kHost = "127.0.0.1:9000";
// AWS's example credentials, so its published signed requests verify as seeds.
const storage::Credentials kCreds{"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"};

bool IsToken(std::string_view name) {
  if (name.empty()) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_';
    if (!ok) return false;
  }
  return true;
}

bool IsFieldValue(std::string_view value) {
  for (unsigned char c : value) {
    if (c < 0x20 && c != '\t') return false;
    if (c == 0x7f) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::FuzzInput in(data, size);
  int mode = in.Byte() % 3;
  net::HttpRequest request;
  request.method = std::string(in.Line());
  request.target = std::string(in.Line());
  // Signable: what an HTTP parser could have handed us and our client could have produced.
  bool signable = IsToken(request.method) && !request.target.empty() && request.target[0] == '/';
  while (!in.empty()) {
    std::string_view line = in.Line();
    size_t colon = line.find(':');
    std::string_view name = line.substr(0, colon);
    std::string_view value = colon == std::string_view::npos ? "" : line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
    if (!IsToken(name) || !IsFieldValue(value)) signable = false;
    request.headers.Add(std::string(name), std::string(value));
    std::chrono::system_clock::time_point t;
    (void)storage::ParseHttpDate(value, &t);
  }

  auto secrets = [](std::string_view key) -> std::optional<std::string> {
    if (key == kCreds.access_key) return kCreds.secret_key;
    return std::nullopt;
  };
  // 2013-05-24T00:00:00Z, the date of AWS's examples, so seeds from them are in time.
  auto now = std::chrono::system_clock::time_point(std::chrono::seconds(1369353600));
  std::string url = "http://" + std::string(kHost) + request.target;
  if (mode != 0) {
    auto parsed = boost::urls::parse_uri(url);
    // The client signs URLs it built itself; a target that is not a valid URL is not one.
    if (!parsed || parsed->has_fragment() || parsed->encoded_path() != request.target.substr(0, request.target.find('?'))) {
      signable = false;
    }
    for (const auto& [name, value] : request.headers) {
      if (net::EqualsIgnoreCase(name, "host") || net::EqualsIgnoreCase(name, "authorization")) {
        signable = false;
      }
    }
    // Our own parameters (or escapes of them) already in the query: our client never signs a
    // URL that carries them, and a request with both mechanisms is refused by design.
    size_t question = request.target.find('?');
    if (question != std::string::npos) {
      for (const auto& [name, value] : net::ParseQuery(request.target.substr(question + 1))) {
        if (name.rfind("X-Amz-", 0) == 0) signable = false;
      }
      std::string raw_query = request.target.substr(question + 1);
      for (size_t at = 0; at <= raw_query.size();) {
        size_t amp = raw_query.find('&', at);
        std::string part = raw_query.substr(at, amp == std::string::npos ? std::string::npos : amp - at);
        std::string decoded;
        if (!net::UriDecode(part.substr(0, part.find('=')), &decoded) || decoded.rfind("X-Amz-", 0) == 0) {
          signable = false;
        }
        if (amp == std::string::npos) break;
        at = amp + 1;
      }
    }
  }

  if (mode == 1) {
    request.headers.Set("Host", std::string(kHost));
    storage::SignRequest(request.method, url, request.headers, storage::kUnsignedPayload, kCreds,
                         "us-east-1", now);
  } else if (mode == 2) {
    for (const auto& [name, value] : request.headers) {
      if (net::EqualsIgnoreCase(name, "x-amz-date") || net::EqualsIgnoreCase(name, "date")) {
        signable = false;  // Presign signs none of them; these are only noise here
      }
    }
    url = storage::Presign(request.method, url, kCreds, "us-east-1", now, std::chrono::seconds(60));
    request.target = url.substr(url.find(kHost) + kHost.size());
    request.headers = net::Headers{{"Host", std::string(kHost)}};
  }
  size_t question = request.target.find('?');
  request.path = request.target.substr(0, question);
  if (question != std::string::npos) request.query = request.target.substr(question + 1);

  auto result = storage::VerifyRequest(request, secrets, "us-east-1", now);
  if (mode != 0 && signable) {
    if (auto* failure = std::get_if<storage::AuthFailure>(&result)) {
      fprintf(stderr, "a request we signed was refused: %s\n", failure->message.c_str());
      abort();
    }
  }
  return 0;
}
