#include "storage/aws_chunked.h"

#include <isa-l/crc.h>
#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>

namespace slipway::storage {
namespace {

constexpr size_t kReadBufferSize = 64 * 1024;
// Chunk header and trailer lines are short (a size, a 64-hex signature, a base64 checksum); a
// longer line means the body is not aws-chunked at all.
constexpr size_t kMaxLineBytes = 4096;
constexpr size_t kMaxTrailerBytes = 16 * 1024;

// Table-driven reflected CRC (the form CRC-32, CRC-32C and CRC-64/NVME all take): init and
// final xor are all ones, the register is shifted right.
template <typename T, T kPoly>
struct ReflectedCrc {
  static constexpr std::array<T, 256> MakeTable() {
    std::array<T, 256> table{};
    for (uint32_t i = 0; i < 256; ++i) {
      T crc = i;
      for (int bit = 0; bit < 8; ++bit) crc = (crc & 1) ? (crc >> 1) ^ kPoly : crc >> 1;
      table[i] = crc;
    }
    return table;
  }
  static constexpr std::array<T, 256> kTable = MakeTable();

  // crc is the running value without the final xor (start with 0).
  static T Update(T crc, std::string_view data) {
    crc = ~crc;
    for (unsigned char c : data) crc = kTable[(crc ^ c) & 0xff] ^ (crc >> 8);
    return ~crc;
  }

  // Polynomial arithmetic modulo kPoly in the reflected bit order, where x^0 is the top bit:
  // what combining two CRCs needs (the CRC of A then B is x^(8*|B|) * crc(A) + crc(B), because
  // the initial value and the final xor are equal).
  static constexpr T kTop = T(1) << (sizeof(T) * 8 - 1);
  static T MultiplyModP(T a, T b) {
    T product = 0;
    for (T m = kTop; m != 0; m >>= 1) {
      if (a & m) product ^= b;
      b = (b & 1) ? (b >> 1) ^ kPoly : b >> 1;
    }
    return product;
  }
  // x^(8 * bytes) mod kPoly, by squaring.
  static T ShiftForBytes(uint64_t bytes) {
    T result = kTop;       // x^0
    T power = kTop >> 8;   // x^8
    for (; bytes != 0; bytes >>= 1) {
      if (bytes & 1) result = MultiplyModP(result, power);
      power = MultiplyModP(power, power);
    }
    return result;
  }
  // The CRC of A followed by B, from crc(A), crc(B) and the length of B.
  static T Combine(T crc_a, T crc_b, uint64_t length_b) {
    return MultiplyModP(ShiftForBytes(length_b), crc_a) ^ crc_b;
  }
};

using Crc32 = ReflectedCrc<uint32_t, 0xEDB88320u>;                // zlib / ISO-HDLC
using Crc32c = ReflectedCrc<uint32_t, 0x82F63B78u>;               // Castagnoli
using Crc64Nvme = ReflectedCrc<uint64_t, 0x9A6C9329AC4BC9B5ull>;  // NVMe

std::string BigEndianBase64(uint64_t value, int bytes) {
  std::string raw(bytes, '\0');
  for (int i = bytes - 1; i >= 0; --i) {
    raw[i] = static_cast<char>(value & 0xff);
    value >>= 8;
  }
  return Base64Encode(raw);
}

std::string_view TrimSpaces(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

Status Malformed(std::string what) {
  return Status::InvalidArgument("The aws-chunked request body is malformed: " + what +
                                 "; the client must send a valid aws-chunked encoding.");
}

}  // namespace

bool IsStreamingPayload(std::string_view content_sha256) {
  return content_sha256.substr(0, 10) == "STREAMING-";
}

std::optional<ChecksumAlgorithm> ChecksumFromHeaderName(std::string_view name) {
  std::string n = net::ToLower(name);
  if (n == "x-amz-checksum-crc32") return ChecksumAlgorithm::kCrc32;
  if (n == "x-amz-checksum-crc32c") return ChecksumAlgorithm::kCrc32c;
  if (n == "x-amz-checksum-crc64nvme") return ChecksumAlgorithm::kCrc64Nvme;
  if (n == "x-amz-checksum-sha1") return ChecksumAlgorithm::kSha1;
  if (n == "x-amz-checksum-sha256") return ChecksumAlgorithm::kSha256;
  return std::nullopt;
}

std::string_view ChecksumHeaderName(ChecksumAlgorithm algorithm) {
  switch (algorithm) {
    case ChecksumAlgorithm::kCrc32:
      return "x-amz-checksum-crc32";
    case ChecksumAlgorithm::kCrc32c:
      return "x-amz-checksum-crc32c";
    case ChecksumAlgorithm::kCrc64Nvme:
      return "x-amz-checksum-crc64nvme";
    case ChecksumAlgorithm::kSha1:
      return "x-amz-checksum-sha1";
    case ChecksumAlgorithm::kSha256:
      return "x-amz-checksum-sha256";
  }
  return "";
}

std::optional<ChecksumAlgorithm> ChecksumFromAlgorithmName(std::string_view name) {
  return ChecksumFromHeaderName("x-amz-checksum-" + std::string(name));
}

std::string_view ChecksumAlgorithmName(ChecksumAlgorithm algorithm) {
  switch (algorithm) {
    case ChecksumAlgorithm::kCrc32:
      return "CRC32";
    case ChecksumAlgorithm::kCrc32c:
      return "CRC32C";
    case ChecksumAlgorithm::kCrc64Nvme:
      return "CRC64NVME";
    case ChecksumAlgorithm::kSha1:
      return "SHA1";
    case ChecksumAlgorithm::kSha256:
      return "SHA256";
  }
  return "";
}

std::string ChecksumElementName(ChecksumAlgorithm algorithm) {
  return "Checksum" + std::string(ChecksumAlgorithmName(algorithm));
}

bool IsCrcChecksum(ChecksumAlgorithm algorithm) {
  return algorithm == ChecksumAlgorithm::kCrc32 || algorithm == ChecksumAlgorithm::kCrc32c ||
         algorithm == ChecksumAlgorithm::kCrc64Nvme;
}

namespace {

size_t ChecksumBytes(ChecksumAlgorithm algorithm) {
  switch (algorithm) {
    case ChecksumAlgorithm::kCrc32:
    case ChecksumAlgorithm::kCrc32c:
      return 4;
    case ChecksumAlgorithm::kCrc64Nvme:
      return 8;
    case ChecksumAlgorithm::kSha1:
      return 20;
    case ChecksumAlgorithm::kSha256:
      return 32;
  }
  return 0;
}

// The binary checksum a stored base64 value holds; nullopt when it is not one of its size.
std::optional<std::string> RawChecksum(ChecksumAlgorithm algorithm, std::string_view base64) {
  std::string raw;
  if (!Base64Decode(base64, &raw) || raw.size() != ChecksumBytes(algorithm)) return std::nullopt;
  return raw;
}

template <typename Crc>
std::optional<std::string> CombineParts(ChecksumAlgorithm algorithm,
                                        const std::vector<std::string>& part_checksums,
                                        const std::vector<uint64_t>& part_sizes) {
  uint64_t whole = 0;
  for (size_t i = 0; i < part_checksums.size(); ++i) {
    auto raw = RawChecksum(algorithm, part_checksums[i]);
    if (!raw) return std::nullopt;
    uint64_t part = 0;
    for (unsigned char c : *raw) part = (part << 8) | c;
    using T = decltype(Crc::kTop);
    whole = i == 0 ? part
                   : Crc::Combine(static_cast<T>(whole), static_cast<T>(part), part_sizes[i]);
  }
  return BigEndianBase64(whole, static_cast<int>(ChecksumBytes(algorithm)));
}

}  // namespace

std::optional<std::string> CompositeChecksum(ChecksumAlgorithm algorithm,
                                             const std::vector<std::string>& part_checksums) {
  PayloadChecksum sum(algorithm);
  for (const auto& part : part_checksums) {
    auto raw = RawChecksum(algorithm, part);
    if (!raw) return std::nullopt;
    sum.Update(*raw);
  }
  return sum.FinishBase64() + "-" + std::to_string(part_checksums.size());
}

std::optional<std::string> FullObjectCrc(ChecksumAlgorithm algorithm,
                                         const std::vector<std::string>& part_checksums,
                                         const std::vector<uint64_t>& part_sizes) {
  if (part_checksums.empty() || part_checksums.size() != part_sizes.size()) return std::nullopt;
  switch (algorithm) {
    case ChecksumAlgorithm::kCrc32:
      return CombineParts<Crc32>(algorithm, part_checksums, part_sizes);
    case ChecksumAlgorithm::kCrc32c:
      return CombineParts<Crc32c>(algorithm, part_checksums, part_sizes);
    case ChecksumAlgorithm::kCrc64Nvme:
      return CombineParts<Crc64Nvme>(algorithm, part_checksums, part_sizes);
    case ChecksumAlgorithm::kSha1:
    case ChecksumAlgorithm::kSha256:
      break;
  }
  return std::nullopt;
}

struct PayloadChecksum::Digest {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  ~Digest() { EVP_MD_CTX_free(ctx); }
};

PayloadChecksum::PayloadChecksum(ChecksumAlgorithm algorithm) : algorithm_(algorithm) {
  if (algorithm == ChecksumAlgorithm::kSha1 || algorithm == ChecksumAlgorithm::kSha256) {
    digest_ = std::make_unique<Digest>();
    EVP_DigestInit_ex(digest_->ctx,
                      algorithm == ChecksumAlgorithm::kSha1 ? EVP_sha1() : EVP_sha256(), nullptr);
  }
}

PayloadChecksum::~PayloadChecksum() = default;

void PayloadChecksum::Update(std::string_view data) {
  switch (algorithm_) {
    // isa-l's folding CRCs: a table a byte at a time is ten times slower than the disk.
    case ChecksumAlgorithm::kCrc32:
      crc_ = crc32_gzip_refl(static_cast<uint32_t>(crc_),
                             reinterpret_cast<const unsigned char*>(data.data()), data.size());
      break;
    case ChecksumAlgorithm::kCrc32c:
      // crc32_iscsi takes and gives the register without the final xor, and an int length.
      for (size_t at = 0; at < data.size();) {
        const size_t n = std::min<size_t>(data.size() - at, size_t{1} << 30);
        auto* bytes = reinterpret_cast<unsigned char*>(const_cast<char*>(data.data() + at));
        crc_ = ~crc32_iscsi(bytes, static_cast<int>(n), ~static_cast<uint32_t>(crc_)) & 0xffffffffu;
        at += n;
      }
      break;
    case ChecksumAlgorithm::kCrc64Nvme:
      crc_ = Crc64Nvme::Update(crc_, data);
      break;
    case ChecksumAlgorithm::kSha1:
    case ChecksumAlgorithm::kSha256:
      EVP_DigestUpdate(digest_->ctx, data.data(), data.size());
      break;
  }
}

std::string PayloadChecksum::FinishBase64() {
  switch (algorithm_) {
    case ChecksumAlgorithm::kCrc32:
    case ChecksumAlgorithm::kCrc32c:
      return BigEndianBase64(crc_, 4);
    case ChecksumAlgorithm::kCrc64Nvme:
      return BigEndianBase64(crc_, 8);
    case ChecksumAlgorithm::kSha1:
    case ChecksumAlgorithm::kSha256: {
      unsigned char md[EVP_MAX_MD_SIZE];
      unsigned int len = 0;
      EVP_DigestFinal_ex(digest_->ctx, md, &len);
      return Base64Encode(std::string_view(reinterpret_cast<const char*>(md), len));
    }
  }
  return "";
}

// --- AwsChunkedDecoder ------------------------------------------------------------------------

AwsChunkedDecoder::AwsChunkedDecoder(ByteSource source, AwsChunkedOptions options)
    : source_(std::move(source)), options_(std::move(options)) {}

AwsChunkedDecoder::~AwsChunkedDecoder() = default;

Result<std::unique_ptr<AwsChunkedDecoder>> AwsChunkedDecoder::Create(ByteSource source,
                                                                     AwsChunkedOptions options) {
  const std::string& mode = options.content_sha256;
  bool is_signed = mode == kStreamingSigned || mode == kStreamingSignedTrailer;
  bool has_trailer = mode == kStreamingSignedTrailer || mode == kStreamingUnsignedTrailer;
  if (!is_signed && !has_trailer) {
    return Status::Unimplemented("The payload encoding '" + mode +
                                 "' is not supported; send STREAMING-AWS4-HMAC-SHA256-PAYLOAD, "
                                 "its -TRAILER variant, STREAMING-UNSIGNED-PAYLOAD-TRAILER or a "
                                 "plain body.");
  }
  if (is_signed && !options.auth) {
    return Status::Internal(
        "A signed aws-chunked body needs the verified request's signing key to check its chunk "
        "signatures; pass VerifiedRequest to the decoder.");
  }
  std::unique_ptr<PayloadChecksum> checksum;
  if (!options.declared_trailer.empty()) {
    if (!has_trailer) {
      return Status::InvalidArgument("x-amz-trailer is set but x-amz-content-sha256 '" + mode +
                                     "' announces no trailer; use a -TRAILER payload encoding.");
    }
    auto algorithm = ChecksumFromHeaderName(TrimSpaces(options.declared_trailer));
    if (!algorithm) {
      return Status::InvalidArgument("The trailer '" + options.declared_trailer +
                                     "' is not supported; declare one of x-amz-checksum-crc32, "
                                     "-crc32c, -crc64nvme, -sha1 or -sha256 in x-amz-trailer.");
    }
    checksum = std::make_unique<PayloadChecksum>(*algorithm);
  }
  std::unique_ptr<AwsChunkedDecoder> d(
      new AwsChunkedDecoder(std::move(source), std::move(options)));
  d->signed_ = is_signed;
  d->has_trailer_ = has_trailer;
  d->checksum_ = std::move(checksum);
  if (is_signed) d->previous_signature_ = d->options_.auth->seed_signature;
  return d;
}

Result<std::unique_ptr<AwsChunkedDecoder>> AwsChunkedDecoder::Create(
    net::BodyReader& body, const net::Headers& request_headers,
    std::optional<VerifiedRequest> auth) {
  AwsChunkedOptions options;
  options.content_sha256 = request_headers.GetOr("x-amz-content-sha256", "");
  options.declared_trailer = request_headers.GetOr("x-amz-trailer", "");
  if (auto len = request_headers.Get("x-amz-decoded-content-length")) {
    uint64_t n = 0;
    auto [ptr, ec] = std::from_chars(len->data(), len->data() + len->size(), n);
    if (ec != std::errc() || ptr != len->data() + len->size()) {
      return Status::InvalidArgument("x-amz-decoded-content-length '" + std::string(*len) +
                                     "' is not a number of bytes; send the payload's size.");
    }
    options.decoded_content_length = n;
  }
  options.auth = std::move(auth);
  return Create([&body](char* buf, size_t n) { return body.Read(buf, n); }, std::move(options));
}

Status AwsChunkedDecoder::Fail(Status status) {
  state_ = State::kFailed;
  error_ = status;
  return status;
}

// Makes at least one unread byte available in buffer_; false at the end of the source.
Result<bool> AwsChunkedDecoder::FillOrEnd() {
  if (buffer_pos_ < buffer_end_) return true;
  // Sized once: resizing a string to 64 KiB for every read zero-fills it again, which costs
  // 64 KiB of writes per byte when a client sends its body a byte at a time (found by fuzzing).
  if (buffer_.size() != kReadBufferSize) buffer_.resize(kReadBufferSize);
  buffer_pos_ = 0;
  buffer_end_ = 0;
  auto n = source_(buffer_.data(), buffer_.size());
  if (!n.ok()) return n.status();
  buffer_end_ = *n;
  return *n > 0;
}

// FillOrEnd where the end of the source is premature.
Status AwsChunkedDecoder::Refill() {
  SLIPWAY_ASSIGN_OR_RETURN(bool more, FillOrEnd());
  if (!more) return Malformed("the body ended in the middle of a chunk or before the final chunk");
  return Status::Ok();
}

// One line without its "\r\n". A bare "\n" is refused: every S3 client ends these lines with
// CRLF, and a body framed two ways is one a proxy in front may read differently.
Status AwsChunkedDecoder::ReadLine(std::string* line) {
  line->clear();
  while (true) {
    SLIPWAY_RETURN_IF_ERROR(Refill());
    std::string_view avail(buffer_.data() + buffer_pos_, buffer_end_ - buffer_pos_);
    size_t nl = avail.find('\n');
    size_t take = nl == std::string_view::npos ? avail.size() : nl;
    line->append(avail.substr(0, take));
    if (line->size() > kMaxLineBytes)
      return Malformed("a chunk header or trailer line is too long");
    if (nl != std::string_view::npos) {
      buffer_pos_ += nl + 1;
      if (line->empty() || line->back() != '\r') {
        return Malformed("a chunk header or trailer line ends in a bare LF; aws-chunked lines "
                         "end in CRLF");
      }
      line->pop_back();
      return Status::Ok();
    }
    buffer_pos_ += take;
  }
}

Status AwsChunkedDecoder::ParseChunkHeader(const std::string& line) {
  std::string_view rest(line);
  size_t semi = rest.find(';');
  std::string_view size_hex = TrimSpaces(rest.substr(0, semi));
  uint64_t size = 0;
  auto [ptr, ec] = std::from_chars(size_hex.data(), size_hex.data() + size_hex.size(), size, 16);
  if (size_hex.empty() || ec != std::errc() || ptr != size_hex.data() + size_hex.size()) {
    return Malformed("the chunk header '" + line.substr(0, 80) +
                     "' does not start with a hex size");
  }
  chunk_signature_.clear();
  if (signed_) {
    constexpr std::string_view kKey = "chunk-signature=";
    std::string_view ext = semi == std::string_view::npos ? "" : rest.substr(semi + 1);
    if (ext.substr(0, kKey.size()) != kKey) {
      return Malformed("the chunk header '" + line.substr(0, 80) + "' has no chunk-signature");
    }
    chunk_signature_ = std::string(TrimSpaces(ext.substr(kKey.size())));
    chunk_hash_ = std::make_unique<Sha256Stream>();
  }
  if (options_.decoded_content_length && decoded_ + size > *options_.decoded_content_length) {
    return Status::InvalidArgument(
        "The aws-chunked body carries more than the " +
        std::to_string(*options_.decoded_content_length) +
        " bytes announced in x-amz-decoded-content-length; send the payload's exact size.");
  }
  chunk_size_ = size;
  chunk_remaining_ = size;
  return Status::Ok();
}

// Checks the signature of the chunk just read (data or final) and moves the chain on.
Status AwsChunkedDecoder::FinishChunk() {
  if (!signed_) return Status::Ok();
  const VerifiedRequest& auth = *options_.auth;
  std::string expected = Sign(
      auth.signing_key,
      ChunkStringToSign(auth.amz_date, auth.scope, previous_signature_, chunk_hash_->FinishHex()));
  chunk_hash_.reset();
  if (!ConstantTimeEquals(expected, chunk_signature_)) {
    return Status::PermissionDenied(
        "The chunk signature of the aws-chunked chunk ending at payload byte " +
        std::to_string(decoded_) +
        " does not match; the client must sign each chunk with the request's signing key.");
  }
  previous_signature_ = std::move(expected);
  return Status::Ok();
}

// After the final zero-length chunk: the trailer section (trailer encodings) or the closing
// empty line, then every whole-body check.
Status AwsChunkedDecoder::ReadTrailerAndFinish() {
  std::string canonical_trailer;  // what the trailer signature covers
  std::string trailer_signature;
  size_t trailer_bytes = 0;
  std::string line;
  while (true) {
    // Clients differ on whether an empty line closes the body; the end of the source does too.
    SLIPWAY_ASSIGN_OR_RETURN(bool more, FillOrEnd());
    if (!more) break;
    SLIPWAY_RETURN_IF_ERROR(ReadLine(&line));
    if (line.empty()) break;
    if (!has_trailer_) return Malformed("data follows the final chunk of a body without trailers");
    trailer_bytes += line.size();
    if (trailer_bytes > kMaxTrailerBytes) return Malformed("the trailer section is too large");
    size_t colon = line.find(':');
    if (colon == std::string::npos)
      return Malformed("the trailer line '" + line.substr(0, 80) + "' has no ':'");
    std::string name = net::ToLower(TrimSpaces(std::string_view(line).substr(0, colon)));
    std::string value(TrimSpaces(std::string_view(line).substr(colon + 1)));
    if (name == "x-amz-trailer-signature") {
      trailer_signature = value;
      continue;
    }
    canonical_trailer += name + ":" + value + "\n";
    trailers_.Add(std::move(name), std::move(value));
  }

  if (signed_ && has_trailer_) {
    const VerifiedRequest& auth = *options_.auth;
    std::string expected = Sign(
        auth.signing_key,
        TrailerStringToSign(auth.amz_date, auth.scope, previous_signature_, canonical_trailer));
    if (trailer_signature.empty() || !ConstantTimeEquals(expected, trailer_signature)) {
      return Status::PermissionDenied(
          "The x-amz-trailer-signature of the aws-chunked body is missing or does not match; "
          "the client must sign its trailing headers.");
    }
  }

  for (const auto& [name, value] : trailers_) {
    auto algorithm = ChecksumFromHeaderName(name);
    if (!algorithm) continue;
    if (!checksum_ || checksum_->algorithm() != *algorithm) {
      return Status::InvalidArgument("The trailer " + name +
                                     " was not declared in x-amz-trailer; declare it so the "
                                     "server can compute it while the data streams.");
    }
  }
  if (checksum_) {
    std::string_view header = ChecksumHeaderName(checksum_->algorithm());
    auto given = trailers_.Get(header);
    if (!given) {
      return Status::InvalidArgument("x-amz-trailer announced " + std::string(header) +
                                     " but the body's trailer does not carry it; send the "
                                     "checksum after the final chunk.");
    }
    std::string actual = checksum_->FinishBase64();
    if (actual != *given) {
      return Status::DataLoss("The " + std::string(header) + " you specified (" +
                              std::string(*given) + ") did not match what we received (" + actual +
                              "); upload the object again.");
    }
  }
  return CheckEnd();
}

Status AwsChunkedDecoder::CheckEnd() {
  if (buffer_pos_ < buffer_end_) return Malformed("bytes follow the end of the body");
  if (options_.decoded_content_length && decoded_ != *options_.decoded_content_length) {
    return Status::InvalidArgument(
        "You did not provide the number of bytes specified by x-amz-decoded-content-length (" +
        std::to_string(*options_.decoded_content_length) + " announced, " +
        std::to_string(decoded_) + " received); send the whole payload.");
  }
  return Status::Ok();
}

Result<size_t> AwsChunkedDecoder::Read(char* buf, size_t n) {
  if (n == 0) return size_t{0};
  while (true) {
    switch (state_) {
      case State::kFailed:
        return error_;
      case State::kDone:
        return size_t{0};
      case State::kChunkHeader: {
        std::string line;
        if (Status st = ReadLine(&line); !st.ok()) return Fail(st);
        if (Status st = ParseChunkHeader(line); !st.ok()) return Fail(st);
        if (chunk_size_ == 0) {
          if (Status st = FinishChunk(); !st.ok()) return Fail(st);
          if (Status st = ReadTrailerAndFinish(); !st.ok()) return Fail(st);
          state_ = State::kDone;
          return size_t{0};
        }
        state_ = State::kChunkData;
        break;
      }
      case State::kChunkData: {
        if (Status st = Refill(); !st.ok()) return Fail(st);
        size_t take = std::min<uint64_t>({n, chunk_remaining_, buffer_end_ - buffer_pos_});
        std::memcpy(buf, buffer_.data() + buffer_pos_, take);
        std::string_view data(buffer_.data() + buffer_pos_, take);
        buffer_pos_ += take;
        chunk_remaining_ -= take;
        decoded_ += take;
        if (chunk_hash_) chunk_hash_->Update(data);
        if (checksum_) checksum_->Update(data);
        if (chunk_remaining_ == 0) state_ = State::kChunkEnd;
        return take;
      }
      case State::kChunkEnd: {
        std::string line;
        if (Status st = ReadLine(&line); !st.ok()) return Fail(st);
        if (!line.empty())
          return Fail(Malformed("a chunk's data is longer than its declared size"));
        if (Status st = FinishChunk(); !st.ok()) return Fail(st);
        state_ = State::kChunkHeader;
        break;
      }
    }
  }
}

}  // namespace slipway::storage
