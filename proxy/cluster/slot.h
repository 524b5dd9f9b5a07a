// Hash slots of Redis Cluster: which of the 16384 slots a key belongs to.
#pragma once

#include <cstdint>
#include <string_view>

namespace corral::cluster {

inline constexpr uint16_t kSlots = 16384;

// CRC16 (XMODEM: polynomial 0x1021, initial value 0) of the key, modulo 16384, as Redis Cluster
// computes it. Hash tags: when the key holds a '{' and, after the first '{', a '}' with at least
// one byte between them, only the bytes between that '{' and the first '}' after it are hashed
// ("{user}.a" and "{user}.b" share a slot; "{}a" hashes whole). No allocation; any bytes.
uint16_t keySlot(std::string_view key);

}  // namespace corral::cluster
