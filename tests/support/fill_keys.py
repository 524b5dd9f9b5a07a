"""The names of corral's internal fill keys, as policies/fill.h makes them, for tests and tools
that must find or plant a lease or a negative entry in Redis.

    lease_key(secret, "user:42")  -> "__corral:lease:{user:42}:<16 hex digits>"
    negative_key(secret, "cart:{7}:items") -> "__corral:neg:{7}:<16 hex digits>"

The digest is SipHash-2-4 of the data key under a key derived from the deployment's
global.fill_secret (see FillKeyNames in policies/fill.cc: the derivation keys are repeated
here). Standard library only.
"""

from __future__ import annotations

_MASK = (1 << 64) - 1

# (k0, k1) pairs that derive the digest keys from the secret: lease, negative, validator halves.
_DERIVE_LEASE = ((0x6c6c69663a6c6172, 0x0000657361656c3a), (0x6c6c69663a6c6172, 0x0001657361656c3a))
_DERIVE_NEG = ((0x6c6c69663a6c6172, 0x000000000067656e), (0x6c6c69663a6c6172, 0x000100000067656e))
_DERIVE_META = ((0x6c6c69663a6c6172, 0x000000006c61763a), (0x6c6c69663a6c6172, 0x000100006c61763a))


def _rotl(x: int, b: int) -> int:
    return ((x << b) | (x >> (64 - b))) & _MASK


def siphash24(k0: int, k1: int, data: bytes) -> int:
    """SipHash-2-4 with the 128-bit key (k0, k1) (little-endian halves), 64-bit result."""
    v0 = k0 ^ 0x736f6d6570736575
    v1 = k1 ^ 0x646f72616e646f6d
    v2 = k0 ^ 0x6c7967656e657261
    v3 = k1 ^ 0x7465646279746573

    def rounds(n: int) -> None:
        nonlocal v0, v1, v2, v3
        for _ in range(n):
            v0 = (v0 + v1) & _MASK
            v1 = _rotl(v1, 13) ^ v0
            v0 = _rotl(v0, 32)
            v2 = (v2 + v3) & _MASK
            v3 = _rotl(v3, 16) ^ v2
            v0 = (v0 + v3) & _MASK
            v3 = _rotl(v3, 21) ^ v0
            v2 = (v2 + v1) & _MASK
            v1 = _rotl(v1, 17) ^ v2
            v2 = _rotl(v2, 32)

    full = len(data) // 8 * 8
    for i in range(0, full, 8):
        m = int.from_bytes(data[i:i + 8], "little")
        v3 ^= m
        rounds(2)
        v0 ^= m
    last = ((len(data) & 0xff) << 56) | int.from_bytes(data[full:], "little")
    v3 ^= last
    rounds(2)
    v0 ^= last
    v2 ^= 0xff
    rounds(4)
    return v0 ^ v1 ^ v2 ^ v3


def _as_bytes(s: str | bytes) -> bytes:
    return s.encode() if isinstance(s, str) else s


def _name(kind: str, derive, secret: str | bytes, key: str | bytes) -> str:
    secret, key = _as_bytes(secret), _as_bytes(key)
    k0 = siphash24(derive[0][0], derive[0][1], secret)
    k1 = siphash24(derive[1][0], derive[1][1], secret)
    digest = siphash24(k0, k1, key)
    text = key.decode("latin-1")
    open_ = text.find("{")
    close = text.find("}", open_ + 1) if open_ >= 0 else -1
    tag = text[open_ + 1:close] if open_ >= 0 and close > open_ + 1 else text
    return f"__corral:{kind}:{{{tag}}}:{digest:016x}"


def lease_key(secret: str | bytes, key: str | bytes) -> str:
    return _name("lease", _DERIVE_LEASE, secret, key)


def negative_key(secret: str | bytes, key: str | bytes) -> str:
    return _name("neg", _DERIVE_NEG, secret, key)


def meta_key(secret: str | bytes, key: str | bytes) -> str:
    """The validator kept beside a ttl.from_origin value: sha1 hex of the value + "E<etag>"."""
    return _name("val", _DERIVE_META, secret, key)


def _self_test() -> None:
    # SipHash-2-4 reference vectors: key 00..0f, input 00 01 .. of length n.
    k0, k1 = 0x0706050403020100, 0x0f0e0d0c0b0a0908
    msg = bytes(range(64))
    assert siphash24(k0, k1, msg[:0]) == 0x726fdb47dd0e0e31
    assert siphash24(k0, k1, msg[:15]) == 0xa129ca6149be45e5
    assert siphash24(k0, k1, msg[:63]) == 0x958a324ceb064572


_self_test()

if __name__ == "__main__":
    import sys
    secret = sys.argv[1]
    for key in sys.argv[2:]:
        print(lease_key(secret, key), negative_key(secret, key))
