"""Deterministic byte streams for byte-exact transfer checks.

Block i of stream `tag` is a fixed 1 MiB pseudo-random block with the tag
and i written into its first bytes, so a lost, repeated or reordered block
changes the stream's hash, and neither side has to store what it sent.
"""
import hashlib
import random

BLOCK = 1 << 20
_base = random.Random(20261128).randbytes(BLOCK)


def blocks(tag, size):
    i = 0
    left = size
    while left > 0:
        head = tag + b"%015d" % i
        block = head + _base[len(head):]
        yield block[:left] if left < BLOCK else block
        left -= BLOCK
        i += 1


def digest(tag, size):
    h = hashlib.sha256()
    for b in blocks(tag, size):
        h.update(b)
    return h.hexdigest()
