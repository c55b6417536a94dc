"""A Merkle tree over an export's rows, in file order, computed in O(log n) memory.

The tree is the one of RFC 6962 (Certificate Transparency), section 2.1:

    leaf hash      = sha256(0x00 || content_hash)          content_hash: the row's 32 raw bytes
    node hash      = sha256(0x01 || left || right)
    MTH([])        = sha256("")
    MTH([d])       = leaf hash of d
    MTH(d[0:n])    = node(MTH(d[0:k]), MTH(d[k:n]))        k: the largest power of two < n

The 0x00 / 0x01 prefixes keep a leaf from ever being read as a node, and an odd node is carried
up unchanged instead of being paired with a copy of itself, so no two different row lists share a
root (duplicating the last node, as Bitcoin does, lets [a, b, c] and [a, b, c, c] collide).

Appending leaves left to right, a stack of perfect subtree roots (at most log2 n of them) is all
that is kept; folding the stack from the right at the end gives exactly MTH, because MTH's left
subtrees are the perfect ones.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from hashlib import sha256

EMPTY_ROOT = hashlib.sha256(b"").hexdigest()
ALGORITHM = "rfc6962-sha256 over rows' content_hash, in file order"


def leaf_hash(content_hash_hex: str) -> bytes:
    return hashlib.sha256(b"\x00" + bytes.fromhex(content_hash_hex)).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


class MerkleBuilder:
    def __init__(self) -> None:
        self._stack: list[tuple[int, bytes]] = []  # (size of the perfect subtree, its root)
        self.count = 0

    def add(self, content_hash_hex: str) -> None:
        self.add_digest(bytes.fromhex(content_hash_hex))

    def add_digest(self, content_hash: bytes) -> None:
        """Add a leaf from the content hash's 32 raw bytes."""
        size, digest = 1, sha256(b"\x00" + content_hash).digest()
        stack = self._stack
        while stack and stack[-1][0] == size:
            left_size, left = stack.pop()
            size, digest = size + left_size, node_hash(left, digest)
        stack.append((size, digest))
        self.count += 1

    def extend(self, content_hashes: Iterable[str]) -> None:
        for digest in content_hashes:
            self.add(digest)

    def root(self) -> str:
        if not self._stack:
            return EMPTY_ROOT
        digest = self._stack[-1][1]
        for _, left in reversed(self._stack[:-1]):
            digest = node_hash(left, digest)
        return digest.hex()


def merkle_root(content_hashes: Iterable[str]) -> str:
    builder = MerkleBuilder()
    builder.extend(content_hashes)
    return builder.root()
