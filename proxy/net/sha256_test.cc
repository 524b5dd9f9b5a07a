// SHA-256 against the FIPS 180-2/180-4 example vectors, the padding boundaries (55, 56, 63, 64
// bytes...) and every way of feeding a message in two pieces.
#include "proxy/net/sha256.h"

#include <doctest/doctest.h>

#include <array>
#include <string>

namespace corral::net {
namespace {

std::string hexOf(const Sha256Digest& d) {
  std::array<char, 64> buf;
  return std::string(toHex(d, buf));
}

// The two multi-block messages of the FIPS examples (448 and 896 bits).
constexpr std::string_view k448Bits = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
constexpr std::string_view k896Bits =
    "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopq"
    "rsmnopqrstnopqrstu";

TEST_CASE("sha256: FIPS 180-4 example vectors") {
  CHECK(hexOf(sha256("")) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(hexOf(sha256("abc")) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  REQUIRE(k448Bits.size() * 8 == 448);
  CHECK(hexOf(sha256(k448Bits)) ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  REQUIRE(k896Bits.size() * 8 == 896);
  CHECK(hexOf(sha256(k896Bits)) ==
        "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
}

TEST_CASE("sha256: one million 'a', in one piece and in uneven pieces") {
  const std::string million(1000000, 'a');
  const std::string want = "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";
  CHECK(hexOf(sha256(million)) == want);
  // Pieces of 1..97 bytes, so updates start at every offset within a block.
  Sha256 h;
  size_t done = 0;
  for (size_t step = 1; done < million.size(); step = step % 97 + 1) {
    size_t n = std::min(step, million.size() - done);
    h.update(std::string_view(million).substr(done, n));
    done += n;
  }
  CHECK(hexOf(h.finish()) == want);
}

TEST_CASE("sha256: lengths around the padding boundaries") {
  // Digests from Python's hashlib of bytes (i * 7 + 3) & 0xff, i = 0..n-1. At 56 bytes and up to
  // 63 the length no longer fits in the last block and padding takes a second one.
  struct Case {
    size_t n;
    const char* hex;
  };
  for (const Case& c : {
           Case{55, "e7313d333c272e639f790978283f9eb392e843d0f29b7016828bb1daa4aac70b"},
           Case{56, "4324d65f3c103567f5589c710bc08f8523f929a9272e3af36fc968e52abc6c27"},
           Case{57, "35df609437dcfea3279283ab79fd554e2bf78f8f7ae2de532d8ee300b09e8f73"},
           Case{63, "81c80242132f230c3bd41b3e63bbcff16107339549214a99614ff26664625055"},
           Case{64, "39e3d7b6b5d075d37d053ad89b24b41bef4f3c29760c84447cab3f3be1882241"},
           Case{65, "aacca6ff74fdbb296d165a45cecfa04e5127bc008770fbbdd48006f2d2fae95e"},
           Case{119, "9ce7368e4daf32341631b492e80359dc9f594b48453cd0dd5bf0b19279cc177e"},
           Case{120, "7836b787757e95e58b3ca5aec90b1b004e8deba1e50e9675af9cabf1a13a04b5"},
           Case{127, "a8d23e75d936f303d248888d9b165ee543f4cbafcad3c9dd2a79bd84faa11d07"},
           Case{128, "d2742f1f4ac6bb7ca2b239ee18402ba8b3f9f8e652d2a72973c2b9ba11c08cf6"},
           Case{129, "307f8fc2c1622b92762e818d39a185d4d667ad49a4b07ceae1f4afa008a93ec4"},
       }) {
    CAPTURE(c.n);
    std::string msg;
    for (size_t i = 0; i < c.n; ++i) msg += static_cast<char>((i * 7 + 3) & 0xff);
    CHECK(hexOf(sha256(msg)) == c.hex);
  }
}

TEST_CASE("sha256: every split into two updates gives the one-shot digest") {
  const Sha256Digest want = sha256(k896Bits);
  for (size_t cut = 0; cut <= k896Bits.size(); ++cut) {
    CAPTURE(cut);
    Sha256 h;
    h.update(k896Bits.substr(0, cut));
    h.update(k896Bits.substr(cut));
    CHECK(h.finish() == want);
  }
}

TEST_CASE("sha256: finish() resets, so one hasher can hash again") {
  Sha256 h;
  h.update("not this");
  (void)h.finish();
  h.update("abc");
  CHECK(hexOf(h.finish()) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(hexOf(h.finish()) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  // Bytes are bytes: NUL and high bytes hash like any other.
  CHECK(hexOf(sha256(std::string_view("p\0w\r\n", 5))) ==
        "3e875bfbc64180ead1f647db8d930c3eb7114d1c2791972fc3a3cf6438cbc297");
}

TEST_CASE("sha256: an empty view with no data (string_view{}) hashes as the empty string") {
  Sha256 h;
  h.update(std::string_view());
  h.update("abc");
  h.update(std::string_view());
  CHECK(hexOf(h.finish()) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

}  // namespace
}  // namespace corral::net
