// SHA-256 (FIPS 180-4), our own small implementation: corral needs it only to compare client
// passwords, and a crypto library for one hash is not worth the dependency.
//
//   update(bytes)... --> 64-byte blocks --> compress() --> finish(): pad, length, digest
//
// Not constant-time with respect to the *length* of the input (no hash is); the content does
// not change the work done. Not for bulk hashing speed: it is a plain portable loop.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace corral::net {

using Sha256Digest = std::array<uint8_t, 32>;

// Incremental hasher: any number of update() calls, then one finish(). After finish() the object
// is reset and may hash a new message.
class Sha256 {
 public:
  Sha256() { reset(); }
  void update(std::string_view data);
  Sha256Digest finish();

 private:
  void reset();
  void compress(const uint8_t* block);  // one 64-byte block into state_

  std::array<uint32_t, 8> state_{};
  std::array<uint8_t, 64> buffer_{};  // a partial block
  size_t buffered_ = 0;               // bytes in buffer_, < 64
  uint64_t total_bytes_ = 0;          // message length so far
};

// The digest of one message.
Sha256Digest sha256(std::string_view data);

// Lowercase hex of a digest (64 characters), for tests and tools; never log a password's digest.
std::string_view toHex(const Sha256Digest& digest, std::array<char, 64>& out);

}  // namespace corral::net
