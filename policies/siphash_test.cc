// SipHash-2-4 against the reference vectors (key 00 01 .. 0f, input 00 01 .. of each length).
#include "policies/siphash.h"

#include <doctest/doctest.h>

#include <string>

namespace corral::policies {
namespace {

TEST_CASE("siphash: SipHash-2-4 reference vectors") {
  const SipKey key{0x0706050403020100ULL, 0x0f0e0d0c0b0a0908ULL};
  std::string in;
  for (int i = 0; i < 64; ++i) in.push_back(static_cast<char>(i));
  CHECK(sipHash24(key, in.substr(0, 0)) == 0x726fdb47dd0e0e31ULL);
  CHECK(sipHash24(key, in.substr(0, 1)) == 0x74f839c593dc67fdULL);
  CHECK(sipHash24(key, in.substr(0, 7)) == 0xab0200f58b01d137ULL);
  CHECK(sipHash24(key, in.substr(0, 8)) == 0x93f5f5799a932462ULL);
  CHECK(sipHash24(key, in.substr(0, 15)) == 0xa129ca6149be45e5ULL);
  CHECK(sipHash24(key, in.substr(0, 16)) == 0x3f2acc7f57c29bdbULL);
  CHECK(sipHash24(key, in.substr(0, 63)) == 0x958a324ceb064572ULL);
}

TEST_CASE("siphash: the key changes the digest; random keys differ") {
  const SipKey a{1, 2};
  const SipKey b{1, 3};
  CHECK(sipHash24(a, "user:42") != sipHash24(b, "user:42"));
  const SipKey r1 = randomSipKey();
  const SipKey r2 = randomSipKey();
  CHECK((r1.k0 != r2.k0 || r1.k1 != r2.k1));
}

}  // namespace
}  // namespace corral::policies
