#include "storage/sigv4.h"

#include <algorithm>
#include <charconv>
#include <ctime>

#include <boost/url/parse.hpp>

#include "net/http_server.h"

namespace slipway::storage {
namespace {

using std::chrono::system_clock;

constexpr std::string_view kAlgorithm = "AWS4-HMAC-SHA256";
// How far a header-signed request's clock may be from ours, and how far in the future a
// presigned URL's X-Amz-Date may lie: S3's own tolerance.
constexpr auto kMaxSkew = std::chrono::minutes(15);
constexpr int64_t kMaxPresignSeconds = 7 * 24 * 3600;

std::string_view AsBytes(const Sha256Digest& d) {
  return {reinterpret_cast<const char*>(d.data()), d.size()};
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// SigV4 header value normalisation: trimmed, inner runs of whitespace collapsed to one space.
std::string CanonicalHeaderValue(std::string_view v) {
  v = Trim(v);
  std::string out;
  out.reserve(v.size());
  bool in_space = false;
  for (char c : v) {
    if (c == ' ' || c == '\t') {
      in_space = true;
      continue;
    }
    if (in_space) out += ' ';
    in_space = false;
    out += c;
  }
  return out;
}

std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t pos = 0;
  while (true) {
    size_t next = s.find(sep, pos);
    out.push_back(s.substr(pos, next == std::string_view::npos ? s.size() - pos : next - pos));
    if (next == std::string_view::npos) break;
    pos = next + 1;
  }
  return out;
}

// A raw query component split into its raw name and raw value ("a%20b=c" -> "a%20b", "c").
std::pair<std::string_view, std::string_view> SplitParam(std::string_view part) {
  size_t eq = part.find('=');
  if (eq == std::string_view::npos) return {part, {}};
  return {part.substr(0, eq), part.substr(eq + 1)};
}

// SigV4 decodes '+' as a literal plus: RFC 3986 has no space-as-plus, and SDKs encode spaces
// as %20. A malformed escape is kept verbatim, so the signature simply fails to match.
std::string DecodeComponent(std::string_view s) {
  std::string out;
  if (!net::UriDecode(s, &out, false)) return std::string(s);
  return out;
}

std::string CanonicalUri(std::string_view raw_path) {
  if (raw_path.empty()) return "/";
  return net::UriEncode(DecodeComponent(raw_path), /*encode_slash=*/false);
}

std::string CanonicalQuery(std::string_view raw_query) {
  std::vector<std::pair<std::string, std::string>> params;
  if (!raw_query.empty()) {
    for (std::string_view part : Split(raw_query, '&')) {
      if (part.empty()) continue;
      auto [name, value] = SplitParam(part);
      params.emplace_back(net::UriEncode(DecodeComponent(name)),
                          net::UriEncode(DecodeComponent(value)));
    }
  }
  std::sort(params.begin(), params.end());
  std::string out;
  for (const auto& [name, value] : params) {
    if (!out.empty()) out += '&';
    out += name;
    out += '=';
    out += value;
  }
  return out;
}

// Every value of the named header, normalised and joined with ',' (repeated headers).
std::string CanonicalHeaderValues(const net::Headers& headers, std::string_view name) {
  std::string out;
  bool first = true;
  for (const auto& [k, v] : headers) {
    if (!net::EqualsIgnoreCase(k, name)) continue;
    if (!first) out += ',';
    first = false;
    out += CanonicalHeaderValue(v);
  }
  return out;
}

std::string Join(const std::vector<std::string>& items, char sep) {
  std::string out;
  for (const auto& s : items) {
    if (!out.empty()) out += sep;
    out += s;
  }
  return out;
}

struct ParsedUrl {
  std::string host;  // as the Host header carries it: "127.0.0.1:9000"
  std::string base;  // "http://127.0.0.1:9000/bucket/key" (no query)
  std::string raw_path;
  std::string raw_query;
};

// URLs come from our own configuration and code; an unparsable one is a programming error, so
// it is signed as given (the server will refuse it) rather than failing a void function.
ParsedUrl ParseUrl(std::string_view url) {
  ParsedUrl out;
  auto r = boost::urls::parse_uri(url);
  if (!r) {
    out.base = std::string(url);
    out.raw_path = "/";
    return out;
  }
  const auto& u = *r;
  out.host = std::string(u.encoded_host());
  // HTTP clients leave the default port out of Host; the signature must match what they send.
  bool default_port =
      (u.scheme() == "http" && u.port() == "80") || (u.scheme() == "https" && u.port() == "443");
  if (u.has_port() && !default_port) {
    out.host += ':';
    out.host += std::string(u.port());
  }
  out.raw_path = std::string(u.encoded_path());
  if (out.raw_path.empty()) out.raw_path = "/";
  if (u.has_query()) out.raw_query = std::string(u.encoded_query());
  out.base = std::string(u.scheme()) + "://" + std::string(u.encoded_authority()) + out.raw_path;
  return out;
}

AuthFailure Fail(AuthError e, std::string message) { return AuthFailure{e, std::move(message)}; }

struct CredentialParts {
  std::string access_key;
  std::string date8;
  std::string region;
  std::string scope;
};

// "AK/20130524/us-east-1/s3/aws4_request"; checks everything that does not need the secret.
std::variant<CredentialParts, AuthFailure> ParseCredential(std::string_view credential,
                                                           std::string_view amz_date,
                                                           std::string_view region) {
  auto parts = Split(credential, '/');
  if (parts.size() != 5 || parts[0].empty() || parts[1].size() != 8 || parts[3] != "s3" ||
      parts[4] != "aws4_request") {
    return Fail(
        AuthError::kMalformed,
        "The credential '" + std::string(credential) +
            "' is malformed; expecting '<access key>/<YYYYMMDD>/<region>/s3/aws4_request'.");
  }
  if (parts[2] != region) {
    return Fail(AuthError::kWrongRegion, "The authorization region '" + std::string(parts[2]) +
                                             "' is wrong; this server expects '" +
                                             std::string(region) +
                                             "': configure the client with that region.");
  }
  if (amz_date.substr(0, 8) != parts[1]) {
    return Fail(AuthError::kMalformed,
                "The credential date '" + std::string(parts[1]) +
                    "' is not the date of the request (" + std::string(amz_date) +
                    "); sign with the credential scope of the request's own date.");
  }
  CredentialParts out;
  out.access_key = std::string(parts[0]);
  out.date8 = std::string(parts[1]);
  out.region = std::string(parts[2]);
  out.scope = CredentialScope(out.date8, out.region);
  return out;
}

std::variant<VerifiedRequest, AuthFailure> CheckSignature(const CanonicalRequestInput& canonical,
                                                          const CredentialParts& cred,
                                                          std::string_view amz_date,
                                                          std::string_view given_signature,
                                                          const SecretLookup& secrets) {
  auto secret = secrets(cred.access_key);
  if (!secret) {
    return Fail(AuthError::kUnknownAccessKey,
                "The access key '" + cred.access_key +
                    "' does not exist in our records; check the credentials the client uses.");
  }
  Sha256Digest key = SigningKey(*secret, cred.date8, cred.region);
  std::string expected = Sign(key, StringToSign(amz_date, cred.scope, CanonicalRequest(canonical)));
  if (!ConstantTimeEquals(expected, given_signature)) {
    return Fail(AuthError::kSignatureMismatch,
                "The request signature we calculated does not match the signature you provided; "
                "check your secret key and signing method.");
  }
  VerifiedRequest v;
  v.access_key = cred.access_key;
  v.payload_hash = canonical.payload_hash;
  v.amz_date = std::string(amz_date);
  v.scope = cred.scope;
  v.seed_signature = std::string(given_signature);
  v.signing_key = key;
  return v;
}

std::vector<std::string> ParseSignedHeaders(std::string_view list) {
  std::vector<std::string> out;
  for (std::string_view h : Split(list, ';')) {
    if (!h.empty()) out.push_back(net::ToLower(h));
  }
  return out;
}

bool ContainsHost(const std::vector<std::string>& signed_headers) {
  return std::find(signed_headers.begin(), signed_headers.end(), "host") != signed_headers.end();
}

std::variant<VerifiedRequest, AuthFailure> VerifyHeaderAuth(const net::HttpRequest& request,
                                                            std::string_view authorization,
                                                            const SecretLookup& secrets,
                                                            std::string_view region,
                                                            system_clock::time_point now) {
  if (authorization.substr(0, kAlgorithm.size() + 1) != std::string(kAlgorithm) + " ") {
    return Fail(AuthError::kMalformed,
                "The authorization mechanism is not supported; sign requests with AWS "
                "Signature Version 4 (AWS4-HMAC-SHA256).");
  }
  std::string_view credential, signed_list, signature;
  for (std::string_view part : Split(authorization.substr(kAlgorithm.size() + 1), ',')) {
    part = Trim(part);
    auto [name, value] = SplitParam(part);
    if (name == "Credential")
      credential = value;
    else if (name == "SignedHeaders")
      signed_list = value;
    else if (name == "Signature")
      signature = value;
  }
  if (credential.empty() || signed_list.empty() || signature.empty()) {
    return Fail(AuthError::kMalformed,
                "The authorization header is malformed; it needs Credential=, SignedHeaders= "
                "and Signature= separated by commas.");
  }

  std::string amz_date;
  system_clock::time_point t;
  if (auto x = request.headers.Get("x-amz-date")) {
    amz_date = std::string(Trim(*x));
    if (!ParseAmzDate(amz_date, &t)) {
      return Fail(AuthError::kMalformed, "The x-amz-date header '" + amz_date +
                                             "' is not a date like 20130524T000000Z; fix the "
                                             "client's date format.");
    }
  } else if (auto d = request.headers.Get("date")) {
    if (!ParseHttpDate(Trim(*d), &t)) {
      return Fail(AuthError::kMalformed, "The Date header '" + std::string(*d) +
                                             "' is not an HTTP date; send x-amz-date instead.");
    }
    amz_date = FormatAmzDate(t);
  } else {
    return Fail(AuthError::kMalformed,
                "The request has no x-amz-date or Date header; a signed request must carry its "
                "signing time in one of them.");
  }

  auto cred = ParseCredential(credential, amz_date, region);
  if (auto* f = std::get_if<AuthFailure>(&cred)) return *f;

  if (now - t > kMaxSkew || t - now > kMaxSkew) {
    return Fail(AuthError::kSkewed, "The difference between the request time (" + amz_date +
                                        ") and the server time (" + FormatAmzDate(now) +
                                        ") is more than 15 minutes; correct the client's clock.");
  }

  auto payload_hash = request.headers.Get("x-amz-content-sha256");
  if (!payload_hash) {
    return Fail(AuthError::kMalformed,
                "The request has no x-amz-content-sha256 header; send the payload's SHA-256, "
                "UNSIGNED-PAYLOAD or a STREAMING-* value.");
  }

  CanonicalRequestInput in;
  in.method = request.method;
  in.raw_path = request.path;
  in.raw_query = request.query;
  in.headers = request.headers;
  in.signed_headers = ParseSignedHeaders(signed_list);
  in.payload_hash = std::string(Trim(*payload_hash));
  if (!ContainsHost(in.signed_headers)) {
    return Fail(AuthError::kMalformed,
                "SignedHeaders does not include 'host'; the Host header must be signed.");
  }
  return CheckSignature(in, std::get<CredentialParts>(cred), amz_date, signature, secrets);
}

std::variant<VerifiedRequest, AuthFailure> VerifyQueryAuth(const net::HttpRequest& request,
                                                           const SecretLookup& secrets,
                                                           std::string_view region,
                                                           system_clock::time_point now) {
  std::string algorithm, credential, amz_date, expires, signed_list, signature, payload_hash;
  std::string query_without_signature;
  for (std::string_view part : Split(request.query, '&')) {
    if (part.empty()) continue;
    auto [raw_name, raw_value] = SplitParam(part);
    std::string name = DecodeComponent(raw_name);
    std::string value = DecodeComponent(raw_value);
    if (name == "X-Amz-Signature") {
      signature = value;
      continue;  // the signature cannot sign itself
    }
    if (!query_without_signature.empty()) query_without_signature += '&';
    query_without_signature += part;
    if (name == "X-Amz-Algorithm")
      algorithm = value;
    else if (name == "X-Amz-Credential")
      credential = value;
    else if (name == "X-Amz-Date")
      amz_date = value;
    else if (name == "X-Amz-Expires")
      expires = value;
    else if (name == "X-Amz-SignedHeaders")
      signed_list = value;
    else if (name == "X-Amz-Content-Sha256")
      payload_hash = value;
  }
  if (algorithm != kAlgorithm) {
    return Fail(AuthError::kMalformed,
                "X-Amz-Algorithm must be AWS4-HMAC-SHA256; presign the URL with Signature "
                "Version 4.");
  }
  if (credential.empty() || amz_date.empty() || expires.empty() || signed_list.empty() ||
      signature.empty()) {
    return Fail(AuthError::kMalformed,
                "The presigned URL lacks one of X-Amz-Credential, X-Amz-Date, X-Amz-Expires, "
                "X-Amz-SignedHeaders or X-Amz-Signature; presign it again.");
  }
  system_clock::time_point t;
  if (!ParseAmzDate(amz_date, &t)) {
    return Fail(AuthError::kMalformed, "X-Amz-Date '" + amz_date +
                                           "' is not a date like 20130524T000000Z; presign the "
                                           "URL again.");
  }
  int64_t expires_s = 0;
  auto [ptr, ec] = std::from_chars(expires.data(), expires.data() + expires.size(), expires_s);
  if (ec != std::errc() || ptr != expires.data() + expires.size() || expires_s < 1 ||
      expires_s > kMaxPresignSeconds) {
    return Fail(AuthError::kMalformed, "X-Amz-Expires '" + expires +
                                           "' must be a number of seconds from 1 to 604800 "
                                           "(7 days); presign the URL again.");
  }

  auto cred = ParseCredential(credential, amz_date, region);
  if (auto* f = std::get_if<AuthFailure>(&cred)) return *f;

  if (t - now > kMaxSkew) {
    return Fail(AuthError::kExpired, "The presigned URL is not valid yet: X-Amz-Date " + amz_date +
                                         " is more than 15 minutes ahead of the server time " +
                                         FormatAmzDate(now) + "; correct the signer's clock.");
  }
  if (now > t + std::chrono::seconds(expires_s)) {
    return Fail(AuthError::kExpired, "Request has expired: the presigned URL was valid until " +
                                         FormatAmzDate(t + std::chrono::seconds(expires_s)) +
                                         "; ask for a new one.");
  }

  CanonicalRequestInput in;
  in.method = request.method;
  in.raw_path = request.path;
  in.raw_query = query_without_signature;
  in.headers = request.headers;
  in.signed_headers = ParseSignedHeaders(signed_list);
  in.payload_hash = payload_hash.empty() ? std::string(kUnsignedPayload) : payload_hash;
  if (!ContainsHost(in.signed_headers)) {
    return Fail(AuthError::kMalformed,
                "X-Amz-SignedHeaders does not include 'host'; presign the URL with the Host "
                "header signed.");
  }
  auto result = CheckSignature(in, std::get<CredentialParts>(cred), amz_date, signature, secrets);
  if (auto* v = std::get_if<VerifiedRequest>(&result)) v->presigned = true;
  return result;
}

}  // namespace

bool ParseHttpDate(std::string_view s, system_clock::time_point* out) {
  std::string str(Trim(s));
  std::tm tm{};
  const char* end = nullptr;
  // IMF-fixdate / RFC 1123, whose zone may also be written numerically ("-0000", "+0100").
  end = strptime(str.c_str(), "%a, %d %b %Y %H:%M:%S", &tm);
  long offset_s = 0;
  if (end != nullptr) {
    std::string_view zone = end;
    while (!zone.empty() && zone.front() == ' ') zone.remove_prefix(1);
    if (zone == "GMT" || zone == "UTC" || zone == "Z") {
      // UTC
    } else if (zone.size() == 5 && (zone[0] == '+' || zone[0] == '-') &&
               zone.find_first_not_of("0123456789", 1) == std::string_view::npos) {
      long hh = (zone[1] - '0') * 10 + (zone[2] - '0');
      long mm = (zone[3] - '0') * 10 + (zone[4] - '0');
      offset_s = (hh * 3600 + mm * 60) * (zone[0] == '-' ? -1 : 1);
    } else {
      return false;
    }
  } else {
    // The obsolete forms RFC 9110 still asks recipients to accept: RFC 850 and asctime.
    tm = {};
    end = strptime(str.c_str(), "%A, %d-%b-%y %H:%M:%S GMT", &tm);
    if (end == nullptr || *end != '\0') {
      tm = {};
      end = strptime(str.c_str(), "%a %b %e %H:%M:%S %Y", &tm);
      if (end == nullptr || *end != '\0') return false;
    }
  }
  return TimePointFromTimeT(timegm(&tm) - offset_s, out);
}

std::string CanonicalRequest(const CanonicalRequestInput& in) {
  std::string out;
  out += in.method;
  out += '\n';
  out += CanonicalUri(in.raw_path);
  out += '\n';
  out += CanonicalQuery(in.raw_query);
  out += '\n';
  for (const auto& name : in.signed_headers) {
    out += name;
    out += ':';
    out += CanonicalHeaderValues(in.headers, name);
    out += '\n';
  }
  out += '\n';
  out += Join(in.signed_headers, ';');
  out += '\n';
  out += in.payload_hash;
  return out;
}

std::string CredentialScope(std::string_view date8, std::string_view region,
                            std::string_view service) {
  std::string out;
  out.append(date8).append("/").append(region).append("/").append(service).append("/aws4_request");
  return out;
}

std::string StringToSign(std::string_view amz_date, std::string_view scope,
                         std::string_view canonical_request) {
  std::string out(kAlgorithm);
  out.append("\n").append(amz_date).append("\n").append(scope).append("\n");
  out += Sha256Hex(canonical_request);
  return out;
}

Sha256Digest SigningKey(std::string_view secret_key, std::string_view date8,
                        std::string_view region, std::string_view service) {
  Sha256Digest k = HmacSha256("AWS4" + std::string(secret_key), date8);
  k = HmacSha256(AsBytes(k), region);
  k = HmacSha256(AsBytes(k), service);
  return HmacSha256(AsBytes(k), "aws4_request");
}

std::string Sign(const Sha256Digest& signing_key, std::string_view string_to_sign) {
  return HexEncode(HmacSha256(AsBytes(signing_key), string_to_sign));
}

std::string ChunkStringToSign(std::string_view amz_date, std::string_view scope,
                              std::string_view previous_signature,
                              std::string_view chunk_sha256_hex) {
  std::string out("AWS4-HMAC-SHA256-PAYLOAD\n");
  out.append(amz_date).append("\n").append(scope).append("\n");
  out.append(previous_signature).append("\n").append(kEmptySha256).append("\n");
  out.append(chunk_sha256_hex);
  return out;
}

std::string TrailerStringToSign(std::string_view amz_date, std::string_view scope,
                                std::string_view previous_signature,
                                std::string_view canonical_trailer) {
  std::string out("AWS4-HMAC-SHA256-TRAILER\n");
  out.append(amz_date).append("\n").append(scope).append("\n");
  out.append(previous_signature).append("\n");
  out += Sha256Hex(canonical_trailer);
  return out;
}

void SignRequest(std::string_view method, std::string_view url, net::Headers& headers,
                 std::string_view payload_hash, const Credentials& creds, std::string_view region,
                 system_clock::time_point now) {
  ParsedUrl u = ParseUrl(url);
  headers.Remove("Authorization");
  if (!headers.Has("Host")) headers.Set("Host", u.host);
  std::string amz_date = FormatAmzDate(now);
  headers.Set("x-amz-date", amz_date);
  headers.Set("x-amz-content-sha256", std::string(payload_hash));

  std::vector<std::string> names;
  for (const auto& [k, v] : headers) names.push_back(net::ToLower(k));
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());

  CanonicalRequestInput in{std::string(method),      u.raw_path, u.raw_query, headers, names,
                           std::string(payload_hash)};
  std::string date8 = amz_date.substr(0, 8);
  std::string scope = CredentialScope(date8, region);
  std::string signature = Sign(SigningKey(creds.secret_key, date8, region),
                               StringToSign(amz_date, scope, CanonicalRequest(in)));
  headers.Set("Authorization", std::string(kAlgorithm) + " Credential=" + creds.access_key + "/" +
                                   scope + ", SignedHeaders=" + Join(names, ';') +
                                   ", Signature=" + signature);
}

std::string Presign(std::string_view method, std::string_view url, const Credentials& creds,
                    std::string_view region, system_clock::time_point now,
                    std::chrono::seconds expires, const net::Headers& extra_signed) {
  ParsedUrl u = ParseUrl(url);
  std::string amz_date = FormatAmzDate(now);
  std::string date8 = amz_date.substr(0, 8);
  std::string scope = CredentialScope(date8, region);
  int64_t expires_s = std::clamp<int64_t>(expires.count(), 1, kMaxPresignSeconds);

  net::Headers headers = extra_signed;
  headers.Set("host", u.host);
  std::vector<std::string> names;
  for (const auto& [k, v] : headers) names.push_back(net::ToLower(k));
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());

  std::string query = u.raw_query;
  auto add = [&](std::string_view name, std::string_view value) {
    if (!query.empty()) query += '&';
    query += name;
    query += '=';
    query += net::UriEncode(value);
  };
  add("X-Amz-Algorithm", kAlgorithm);
  add("X-Amz-Credential", creds.access_key + "/" + scope);
  add("X-Amz-Date", amz_date);
  add("X-Amz-Expires", std::to_string(expires_s));
  add("X-Amz-SignedHeaders", Join(names, ';'));

  CanonicalRequestInput in{std::string(method),          u.raw_path, query, headers, names,
                           std::string(kUnsignedPayload)};
  std::string signature = Sign(SigningKey(creds.secret_key, date8, region),
                               StringToSign(amz_date, scope, CanonicalRequest(in)));
  add("X-Amz-Signature", signature);
  return u.base + "?" + query;
}

std::variant<VerifiedRequest, AuthFailure> VerifyRequest(const net::HttpRequest& request,
                                                         const SecretLookup& secrets,
                                                         std::string_view region,
                                                         system_clock::time_point now) {
  auto authorization = request.headers.Get("Authorization");
  bool has_query_auth = false;
  for (std::string_view part : Split(request.query, '&')) {
    std::string name = DecodeComponent(SplitParam(part).first);
    if (name == "X-Amz-Algorithm" || name == "X-Amz-Signature" || name == "X-Amz-Credential") {
      has_query_auth = true;
      break;
    }
  }
  if (authorization && has_query_auth) {
    return Fail(AuthError::kMalformed,
                "Only one authentication mechanism is allowed; send either the Authorization "
                "header or the X-Amz-* query parameters, not both.");
  }
  if (authorization) return VerifyHeaderAuth(request, *authorization, secrets, region, now);
  if (has_query_auth) return VerifyQueryAuth(request, secrets, region, now);
  return Fail(AuthError::kMissing,
              "The request is not signed; sign it with AWS Signature Version 4 (Authorization "
              "header or a presigned URL).");
}

}  // namespace slipway::storage
