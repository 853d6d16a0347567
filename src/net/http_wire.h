// HTTP/1.1 message heads and chunked bodies as bytes on the wire, parsed strictly: the event
// engine (proxy_server.h) reads with these, so whatever it forwards was framed exactly one way.
// No Boost, no sockets: cheap to include and tested on byte strings.
//
// A request head is refused (InvalidArgument, with a sentence for the client) when its framing
// could be read two ways by two parsers (request smuggling): Content-Length together with
// Transfer-Encoding, Content-Length twice or not a plain number, a Transfer-Encoding other than
// "chunked", obsolete line folding, a bare LF or CR, white space before a field's colon, more
// than one Host or a Host longer than kMaxHostBytes, control characters anywhere.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"
#include "net/http.h"

namespace slipway::net {

inline constexpr size_t kMaxHostBytes = 255 + 6;  // a DNS name, ':' and a port

struct RequestHead {
  std::string method;
  std::string target;  // as sent; origin-form or not is the caller's to judge
  int version_minor = 1;  // HTTP/1.<minor>
  Headers headers;
  std::optional<uint64_t> content_length;  // absent for chunked or no body
  bool chunked = false;
  bool keep_alive = true;  // HTTP/1.1 without "Connection: close", or 1.0 with keep-alive
  bool expect_continue = false;
};

// A header field as it stands in the bytes of a head: valid only while those bytes are.
using FieldView = std::pair<std::string_view, std::string_view>;

// A response head, read without copying: its fields point into the parsed bytes. The engine
// parses every upstream response into one per connection, so no field costs an allocation.
struct ResponseHead {
  int status = 0;
  int version_minor = 1;
  std::vector<FieldView> fields;
  std::optional<uint64_t> content_length;
  bool chunked = false;
  bool close = false;  // the sender closes the connection after this response

  // The first value of that field (case-insensitive name), if any.
  std::optional<std::string_view> Get(std::string_view name) const;
};

// The length of the head at the start of data, blank line included, once it is complete;
// nullopt while more bytes are needed.
std::optional<size_t> HeadLength(std::string_view data);

// Refuses at once the start of a request head that can never become a valid one, so the client
// hears why instead of waiting out the header timeout: a bare LF or CR line end (a head whose
// lines end in LF alone never shows the CRLF CRLF that ends it), or a first line that does not
// begin with a method (TLS bytes sent to the plain-HTTP port). Only data[from..] is new since the
// last call (one byte before it is looked at again), so a head trickling in is scanned once.
Status CheckPartialRequestHead(std::string_view data, size_t from);

// Parses one complete head (HeadLength bytes).
Result<RequestHead> ParseRequestHead(std::string_view head);
// Into *out, reusing its fields' room; on an error *out is unspecified.
Status ParseResponseHead(std::string_view head, ResponseHead* out);

// Whether a field describes one connection rather than the message (RFC 9110 7.6.1: Connection,
// Keep-Alive, Proxy-Connection, TE, Trailer, Upgrade, Proxy-Authorization, Transfer-Encoding),
// and so never crosses a proxy.
bool IsHopByHopField(std::string_view name);

// Whether a comma-separated list ("close, X-Secret") holds the token, case-insensitively.
bool HasToken(std::string_view list, std::string_view token);

// Whether a Connection field among fields (pairs of name and value) names this field: then it
// is hop-by-hop for that message too.
template <class Fields>
bool NamedByConnection(const Fields& fields, std::string_view name) {
  for (const auto& [field, value] : fields) {
    if (EqualsIgnoreCase(field, "Connection") && HasToken(value, name)) return true;
  }
  return false;
}

// Appends the end-to-end fields among fields (pairs of name and value) as header lines ("Name:
// value" CRLF each): all but the hop-by-hop ones, those a Connection field names, and the names
// in also_drop.
template <class Fields>
void AppendEndToEndFields(const Fields& fields, std::initializer_list<std::string_view> also_drop,
                          std::string* out) {
  bool connection = false;
  for (const auto& [field, value] : fields) {
    connection = connection || EqualsIgnoreCase(field, "Connection");
  }
  for (const auto& [name, value] : fields) {
    bool dropped = IsHopByHopField(name) || (connection && NamedByConnection(fields, name));
    for (std::string_view h : also_drop) dropped = dropped || EqualsIgnoreCase(name, h);
    if (dropped) continue;
    *out += name;
    *out += ": ";
    *out += value;
    *out += "\r\n";
  }
}

// Whether a response to this request status carries a body at all (not for HEAD, 1xx, 204, 304).
bool ResponseHasBody(std::string_view request_method, int status);

// Decodes a chunked body incrementally, in place: the payload of the bytes given is moved to
// their front, so a relay needs no second buffer. Chunk extensions and trailer fields are read
// and dropped (bounded in size).
class ChunkedDecoder {
 public:
  struct Step {
    size_t payload = 0;   // payload bytes now at the front of the buffer given
    size_t consumed = 0;  // input bytes used; less than given only once done()
  };
  Result<Step> Decode(char* data, size_t n);
  bool done() const { return state_ == State::kDone; }

 private:
  enum class State { kSize, kExtension, kSizeLf, kData, kDataCr, kDataLf, kTrailer, kTrailerLine,
                     kTrailerLf, kLastLf, kDone };
  State state_ = State::kSize;
  uint64_t size_ = 0;
  int size_digits_ = 0;
  size_t line_bytes_ = 0;     // of the current extension or trailer line
  size_t trailer_bytes_ = 0;  // of all trailer lines
};

// "1a2b\r\n": the line that starts a chunk of n payload bytes.
std::string ChunkSizeLine(size_t n);

}  // namespace slipway::net
