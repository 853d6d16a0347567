#include "net/http_wire.h"

#include <algorithm>
#include <charconv>
#include <cstring>

#include <fmt/format.h>

namespace slipway::net {
namespace {

constexpr size_t kMaxChunkLine = 4096;
constexpr size_t kMaxTrailerBytes = 16 * 1024;
constexpr size_t kMaxMethod = 32;

bool IsTokenChar(unsigned char c) {
  if (c >= '0' && c <= '9') return true;
  if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return true;
  return std::strchr("!#$%&'*+-.^_`|~", c) != nullptr && c != 0;
}

bool IsToken(std::string_view s) {
  if (s.empty()) return false;
  for (unsigned char c : s) {
    if (!IsTokenChar(c)) return false;
  }
  return true;
}

// Field values: visible ASCII, obs-text, SP and HTAB; never other control characters.
bool IsFieldValue(std::string_view s) {
  for (unsigned char c : s) {
    if ((c < 0x20 && c != '\t') || c == 0x7f) return false;
  }
  return true;
}

std::string_view TrimOws(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::optional<uint64_t> ParseDecimal(std::string_view s) {
  if (s.empty() || s.size() > 19) return std::nullopt;
  uint64_t n = 0;
  auto [end, err] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (err != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return n;
}

// The header lines after the start line: each "name: value" CRLF, then the blank line, each
// field handed to add(name, value). Framing fields are checked by the callers; this refuses
// what no parser may read two ways.
template <class Add>
Status ParseFields(std::string_view lines, Add add) {
  while (!lines.starts_with("\r\n")) {
    size_t end = lines.find("\r\n");
    if (end == std::string_view::npos) return Status::InvalidArgument("the header ends mid-line");
    std::string_view line = lines.substr(0, end);
    lines.remove_prefix(end + 2);
    if (line.empty()) break;
    if (line.front() == ' ' || line.front() == '\t') {
      return Status::InvalidArgument(
          "the header uses obsolete line folding (a line starting with white space); send each "
          "field on one line");
    }
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || !IsToken(line.substr(0, colon))) {
      return Status::InvalidArgument(
          fmt::format("the header line \"{}\" is not \"name: value\" (no white space before the "
                      "colon, a name of token characters)",
                      line.substr(0, 64)));
    }
    std::string_view value = TrimOws(line.substr(colon + 1));
    if (!IsFieldValue(value)) {
      return Status::InvalidArgument(fmt::format(
          "the value of header field {} holds control characters", line.substr(0, colon)));
    }
    add(line.substr(0, colon), value);
  }
  return Status::Ok();
}

// A head must use CRLF only: a lone CR or LF is read differently by different parsers.
Status CheckLineEnds(std::string_view head) {
  // Every LF must follow a CR and every CR precede an LF: then the counts of both match.
  size_t crs = 0;
  for (size_t at = head.find('\r'); at != std::string_view::npos; at = head.find('\r', at + 1)) {
    if (at + 1 >= head.size() || head[at + 1] != '\n') {
      return Status::InvalidArgument("the header has a CR without LF; end lines with CRLF");
    }
    ++crs;
  }
  if (static_cast<size_t>(std::count(head.begin(), head.end(), '\n')) != crs) {
    return Status::InvalidArgument("the header has a bare LF; end lines with CRLF");
  }
  return Status::Ok();
}

// Content-Length and Transfer-Encoding of a message, refusing any ambiguity.
struct Framing {
  std::optional<uint64_t> content_length;
  bool chunked = false;
};
template <class Fields>
Result<Framing> ReadFraming(const Fields& headers) {
  Framing f;
  int lengths = 0, encodings = 0;
  std::string_view encoding;
  for (const auto& [name, value] : headers) {
    if (EqualsIgnoreCase(name, "Content-Length")) {
      ++lengths;
      f.content_length = ParseDecimal(value);
      if (!f.content_length) {
        return Status::InvalidArgument("Content-Length \"" + std::string(value.substr(0, 32)) +
                                       "\" is not a number of bytes");
      }
    } else if (EqualsIgnoreCase(name, "Transfer-Encoding")) {
      ++encodings;
      encoding = value;
    }
  }
  if (lengths > 1) {
    return Status::InvalidArgument("the message has Content-Length more than once; send it once");
  }
  if (encodings > 0 && lengths > 0) {
    return Status::InvalidArgument(
        "the message has both Content-Length and Transfer-Encoding; send one of them");
  }
  if (encodings > 1 || (encodings == 1 && !EqualsIgnoreCase(encoding, "chunked"))) {
    return Status::InvalidArgument(
        "Transfer-Encoding must be exactly \"chunked\" here (once, no other coding)");
  }
  f.chunked = encodings == 1;
  return f;
}

// "HTTP/1.1" -> 1; nullopt for anything but HTTP/1.0 and HTTP/1.1.
std::optional<int> ParseVersion(std::string_view v) {
  if (v == "HTTP/1.1") return 1;
  if (v == "HTTP/1.0") return 0;
  return std::nullopt;
}

}  // namespace

bool HasToken(std::string_view list, std::string_view token) {
  while (!list.empty()) {
    size_t comma = list.find(',');
    if (EqualsIgnoreCase(TrimOws(list.substr(0, comma)), token)) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

bool IsHopByHopField(std::string_view name) {
  static constexpr std::string_view kHopByHop[] = {
      "Connection", "Keep-Alive",          "Proxy-Connection", "TE", "Trailer",
      "Upgrade",    "Proxy-Authorization", "Transfer-Encoding"};
  for (std::string_view h : kHopByHop) {
    if (EqualsIgnoreCase(name, h)) return true;
  }
  return false;
}

std::optional<std::string_view> ResponseHead::Get(std::string_view name) const {
  for (const auto& [field, value] : fields) {
    if (EqualsIgnoreCase(field, name)) return value;
  }
  return std::nullopt;
}

std::optional<size_t> HeadLength(std::string_view data) {
  size_t at = data.find("\r\n\r\n");
  if (at == std::string_view::npos) return std::nullopt;
  return at + 4;
}

Status CheckPartialRequestHead(std::string_view data, size_t from) {
  if (from == 0 && !data.empty()) {
    // A TLS record starts with its content type, 0x16 for a handshake.
    if (data.front() == 0x16) {
      return Status::InvalidArgument(
          "this port speaks plain HTTP and the bytes received are a TLS handshake; send "
          "http:// requests here, not https://");
    }
  }
  // The method: token characters up to the first space, within the first kMaxMethod bytes.
  std::string_view start = data.substr(0, kMaxMethod + 1);
  size_t method_end = start.find(' ');
  std::string_view method = start.substr(0, method_end);
  if (method.size() > kMaxMethod) {
    return Status::InvalidArgument(
        "the bytes received are not an HTTP request (no method in its first bytes); send "
        "HTTP/1.1 to this port");
  }
  for (size_t i = std::min(from, method.size()); i < method.size(); ++i) {
    if (!IsTokenChar(static_cast<unsigned char>(method[i]))) {
      return Status::InvalidArgument(
          "the bytes received are not an HTTP request (it must start with a method such as "
          "GET); send HTTP/1.1 to this port");
    }
  }
  if (method_end == 0) {
    return Status::InvalidArgument("the request line is not \"METHOD /path HTTP/1.1\"");
  }
  for (size_t i = from > 0 ? from - 1 : 0; i < data.size(); ++i) {
    if (data[i] == '\n' && (i == 0 || data[i - 1] != '\r')) {
      return Status::InvalidArgument("the header has a bare LF; end lines with CRLF");
    }
    if (data[i] == '\r' && i + 1 < data.size() && data[i + 1] != '\n') {
      return Status::InvalidArgument("the header has a CR without LF; end lines with CRLF");
    }
  }
  return Status::Ok();
}

Result<RequestHead> ParseRequestHead(std::string_view head) {
  SLIPWAY_RETURN_IF_ERROR(CheckLineEnds(head));
  size_t line_end = head.find("\r\n");
  std::string_view line = head.substr(0, line_end);
  size_t sp1 = line.find(' ');
  size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos) {
    return Status::InvalidArgument("the request line is not \"METHOD /path HTTP/1.1\"");
  }
  RequestHead r;
  std::string_view method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  auto version = ParseVersion(line.substr(sp2 + 1));
  if (!IsToken(method) || target.empty() || !version) {
    return Status::InvalidArgument("the request line is not \"METHOD /path HTTP/1.1\"");
  }
  for (unsigned char c : target) {
    if (c <= 0x20 || c >= 0x7f) {
      return Status::InvalidArgument("the request target holds a character that must be "
                                     "percent-encoded");
    }
  }
  r.method = method;
  r.target = target;
  r.version_minor = *version;
  SLIPWAY_RETURN_IF_ERROR(
      ParseFields(head.substr(line_end + 2), [&](std::string_view name, std::string_view value) {
        r.headers.Add(std::string(name), std::string(value));
      }));
  SLIPWAY_ASSIGN_OR_RETURN(Framing framing, ReadFraming(r.headers));
  if (framing.chunked && r.version_minor == 0) {
    return Status::InvalidArgument("HTTP/1.0 has no Transfer-Encoding; send Content-Length");
  }
  r.content_length = framing.content_length;
  r.chunked = framing.chunked;
  int hosts = 0;
  bool close = false, keep_alive = false;
  for (const auto& [name, value] : r.headers) {
    if (EqualsIgnoreCase(name, "Host")) {
      if (++hosts > 1) return Status::InvalidArgument("the request has more than one Host field");
      if (value.size() > kMaxHostBytes) {
        return Status::InvalidArgument(
            fmt::format("the Host field is longer than {} bytes", kMaxHostBytes));
      }
    } else if (EqualsIgnoreCase(name, "Connection")) {
      close = close || HasToken(value, "close");
      keep_alive = keep_alive || HasToken(value, "keep-alive");
    } else if (EqualsIgnoreCase(name, "Expect")) {
      r.expect_continue = EqualsIgnoreCase(value, "100-continue");
    }
  }
  r.keep_alive = r.version_minor == 1 ? !close : keep_alive && !close;
  return r;
}

Status ParseResponseHead(std::string_view head, ResponseHead* out) {
  SLIPWAY_RETURN_IF_ERROR(CheckLineEnds(head));
  size_t line_end = head.find("\r\n");
  std::string_view line = head.substr(0, line_end);
  ResponseHead& r = *out;
  auto version = ParseVersion(line.substr(0, 8));
  int status = 0;
  if (!version || line.size() < 12 || line[8] != ' ' ||
      std::from_chars(line.data() + 9, line.data() + 12, status).ptr != line.data() + 12 ||
      status < 100 || status > 999 || (line.size() > 12 && line[12] != ' ')) {
    return Status::InvalidArgument("the status line is not \"HTTP/1.1 200 OK\"");
  }
  r.status = status;
  r.version_minor = *version;
  r.fields.clear();
  SLIPWAY_RETURN_IF_ERROR(
      ParseFields(head.substr(line_end + 2), [&](std::string_view name, std::string_view value) {
        r.fields.emplace_back(name, value);
      }));
  SLIPWAY_ASSIGN_OR_RETURN(Framing framing, ReadFraming(r.fields));
  r.content_length = framing.content_length;
  r.chunked = framing.chunked;
  r.close = false;
  bool keep_alive = false;
  for (const auto& [name, value] : r.fields) {
    if (EqualsIgnoreCase(name, "Connection")) {
      r.close = r.close || HasToken(value, "close");
      keep_alive = keep_alive || HasToken(value, "keep-alive");
    }
  }
  if (r.version_minor == 0 && !keep_alive) r.close = true;
  return Status::Ok();
}

bool ResponseHasBody(std::string_view request_method, int status) {
  return request_method != "HEAD" && status >= 200 && status != 204 && status != 304;
}

Result<ChunkedDecoder::Step> ChunkedDecoder::Decode(char* data, size_t n) {
  Step step;
  size_t i = 0;
  auto bad = [](std::string_view what) {
    return Status::InvalidArgument("the chunked body is malformed: " + std::string(what));
  };
  while (i < n && state_ != State::kDone) {
    char c = data[i];
    switch (state_) {
      case State::kSize: {
        int digit = (c >= '0' && c <= '9')   ? c - '0'
                    : (c >= 'a' && c <= 'f') ? c - 'a' + 10
                    : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                             : -1;
        if (digit >= 0) {
          if (++size_digits_ > 15) return bad("a chunk size is too large");
          size_ = size_ * 16 + static_cast<uint64_t>(digit);
        } else if (size_digits_ == 0) {
          return bad("a chunk does not start with its size in hex");
        } else if (c == ';' || c == ' ' || c == '\t') {
          state_ = State::kExtension;
          line_bytes_ = 0;
        } else if (c == '\r') {
          state_ = State::kSizeLf;
        } else {
          return bad("a chunk size line holds an unexpected character");
        }
        ++i;
        break;
      }
      case State::kExtension:
        if (c == '\r') {
          state_ = State::kSizeLf;
        } else if (c == '\n' || ++line_bytes_ > kMaxChunkLine) {
          return bad("a chunk extension is too long or ends without CRLF");
        }
        ++i;
        break;
      case State::kSizeLf:
        if (c != '\n') return bad("a chunk size line does not end with CRLF");
        ++i;
        size_digits_ = 0;
        if (size_ == 0) {
          state_ = State::kTrailer;
        } else {
          state_ = State::kData;
        }
        break;
      case State::kData: {
        size_t take = static_cast<size_t>(std::min<uint64_t>(size_, n - i));
        if (step.payload != i) std::memmove(data + step.payload, data + i, take);
        step.payload += take;
        i += take;
        size_ -= take;
        if (size_ == 0) state_ = State::kDataCr;
        break;
      }
      case State::kDataCr:
        if (c != '\r') return bad("a chunk's data is longer than its size");
        state_ = State::kDataLf;
        ++i;
        break;
      case State::kDataLf:
        if (c != '\n') return bad("a chunk's data does not end with CRLF");
        state_ = State::kSize;
        size_ = 0;
        ++i;
        break;
      case State::kTrailer:  // at the start of a trailer line, or of the final CRLF
        if (c == '\r') {
          state_ = State::kLastLf;
        } else {
          state_ = State::kTrailerLine;
          line_bytes_ = 0;
          continue;  // the byte belongs to the line
        }
        ++i;
        break;
      case State::kTrailerLine:
        if (c == '\r') {
          state_ = State::kTrailerLf;
        } else if (c == '\n' || ++line_bytes_ > kMaxChunkLine) {
          return bad("a trailer line is too long or ends without CRLF");
        }
        if (++trailer_bytes_ > kMaxTrailerBytes) return bad("the trailer fields are too large");
        ++i;
        break;
      case State::kTrailerLf:
        if (c != '\n') return bad("a trailer line does not end with CRLF");
        state_ = State::kTrailer;
        ++i;
        break;
      case State::kLastLf:
        if (c != '\n') return bad("the last chunk does not end with CRLF");
        state_ = State::kDone;
        ++i;
        break;
      case State::kDone:
        break;
    }
  }
  step.consumed = i;
  return step;
}

std::string ChunkSizeLine(size_t n) { return fmt::format("{:x}\r\n", n); }

}  // namespace slipway::net
