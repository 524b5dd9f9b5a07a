#include "proxy/cluster/slot.h"

#include <array>

namespace corral::cluster {
namespace {

// CRC16-CCITT (XMODEM), one table lookup per byte; the table is built at compile time from the
// polynomial rather than copied in.
constexpr std::array<uint16_t, 256> makeTable() {
  std::array<uint16_t, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t crc = i << 8;
    for (int bit = 0; bit < 8; ++bit) crc = (crc & 0x8000) != 0 ? (crc << 1) ^ 0x1021 : crc << 1;
    t[i] = static_cast<uint16_t>(crc);
  }
  return t;
}

constexpr std::array<uint16_t, 256> kCrcTable = makeTable();

constexpr uint16_t crc16(std::string_view s) {
  uint16_t crc = 0;
  for (char c : s) {
    const auto byte = static_cast<unsigned char>(c);
    crc = static_cast<uint16_t>((crc << 8) ^ kCrcTable[((crc >> 8) ^ byte) & 0xff]);
  }
  return crc;
}

// CRC-16/XMODEM's published check value (the CRC of "123456789").
static_assert(crc16("123456789") == 0x31c3);

}  // namespace

uint16_t keySlot(std::string_view key) {
  const size_t open = key.find('{');
  if (open != std::string_view::npos) {
    const size_t close = key.find('}', open + 1);
    // "{}" (nothing between) is no tag: the whole key is hashed, as Redis does.
    if (close != std::string_view::npos && close > open + 1) {
      key = key.substr(open + 1, close - open - 1);
    }
  }
  return static_cast<uint16_t>(crc16(key) & (kSlots - 1));
}

}  // namespace corral::cluster
