// Hashing, encoding and encryption primitives (OpenSSL underneath): SHA-256, HMAC-SHA256, hex,
// base64, AES-256-GCM.
// All functions are pure and thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "base/status.h"

namespace slipway {

using Sha256Digest = std::array<uint8_t, 32>;

Sha256Digest Sha256(std::string_view data);
std::string Sha256Hex(std::string_view data);
Sha256Digest HmacSha256(std::string_view key, std::string_view data);

std::string HexEncode(std::string_view bytes);
std::string HexEncode(const Sha256Digest& digest);
std::string Base64Encode(std::string_view bytes);
// Returns false on malformed input.
bool Base64Decode(std::string_view in, std::string* out);

// Incremental SHA-256 for streams (uploads, archives) that never sit in memory.
class Sha256Stream {
 public:
  Sha256Stream();
  ~Sha256Stream();
  Sha256Stream(const Sha256Stream&) = delete;
  Sha256Stream& operator=(const Sha256Stream&) = delete;

  void Update(std::string_view data);
  void Update(const void* data, size_t n) { Update(std::string_view(static_cast<const char*>(data), n)); }
  // Finishes the digest; the stream must not be updated afterwards.
  Sha256Digest Finish();
  std::string FinishHex() { return HexEncode(Finish()); }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Cryptographically random bytes, hex encoded (2 * n characters).
std::string RandomHex(size_t n);

// Frees what OpenSSL keeps for the calling thread (its error queue, its random generators),
// which it would otherwise free as the thread exits. A detached thread calls this before it
// says it is done, so that a process exiting right after never races that cleanup.
void ReleaseThreadCryptoState();

// Constant-time equality for secrets and signatures (CRYPTO_memcmp; only the lengths leak).
bool ConstantTimeEquals(std::string_view a, std::string_view b);

// AES-256-GCM with a random 96-bit nonce: returns nonce | ciphertext | 16-byte tag. `aad` is
// authenticated, not encrypted: binding a ciphertext to where it is stored means it cannot be
// moved to another record and still open. `key` must be 32 bytes.
Result<std::string> AesGcmSeal(std::string_view key, std::string_view plaintext,
                               std::string_view aad);
// The inverse; PermissionDenied when the key or aad is not the one it was sealed with, or the
// bytes were changed (the tag does not match).
Result<std::string> AesGcmOpen(std::string_view key, std::string_view sealed, std::string_view aad);

}  // namespace slipway
