"""Exact and near-duplicate detection: shingles, MinHash signatures, LSH, verification.

Pipeline, for one text:

1. ``canonical_form`` (see :mod:`curation.text`) and split into words.
2. Shingles: every run of ``shingle_size`` (5) consecutive words. A text with
   fewer words is one shingle of all its words; an empty text has no shingles.
   Each shingle is stored as a 64-bit *fingerprint* (:func:`shingle_hash64`),
   so a shingle set is a sorted ``uint64`` array. "Exact Jaccard" below is
   exact on these fingerprints; two different shingles share a fingerprint
   with probability ~2^-64 per pair, far below anything we could measure.
3. A MinHash signature of the shingle set. We compute it with vectorised numpy,
   bit-for-bit equal to ``datasketch.MinHash(num_perm, seed, scheme="affine32",
   hashfunc=shingle_hash32).update_batch(shingles(text))`` (a test holds us to
   that), because datasketch hashes one shingle at a time in Python:
   ``MinHash.bulk`` with its default SHA-1 managed ~1,300 docs/s on 400-word
   documents where this does ~4,200 (one core, same machine).
4. LSH banding: ``bands`` bands of ``rows`` signature values each; two texts
   become *candidates* if any band is identical (see :func:`choose_lsh_params`).
5. Verification: every candidate pair is re-scored with exact Jaccard on the
   fingerprint sets and kept only if it reaches the threshold, so reported
   pairs have precision 1.0 by construction; only recall is probabilistic.

datasketch 2.0 changed the default permutation scheme (``legacy`` -> ``affine32``),
so hash values from different versions or settings must never be compared. Every
:class:`Signature` carries its :class:`SignatureScheme`, and comparing or
indexing signatures of different schemes raises :class:`SchemeMismatchError`.
"""

from __future__ import annotations

import hashlib
import math
import re
import struct
import threading
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import datasketch
import numpy as np
import numpy.typing as npt
from datasketch import LeanMinHash, MinHash, MinHashLSH

from curation.text import canonical_words

__all__ = [
    "Cluster",
    "CompactNearDupIndex",
    "Match",
    "NearDupIndex",
    "NearDuplicatePairs",
    "SchemeMismatchError",
    "Signature",
    "SignatureScheme",
    "VerifiedPair",
    "choose_lsh_params",
    "cluster_pairs",
    "compute_signatures",
    "find_near_duplicate_clusters",
    "find_near_duplicate_pairs",
    "jaccard",
    "lsh_band_hashes",
    "lsh_candidate_probability",
    "pack_shingles",
    "shingle_fingerprints",
    "shingle_fingerprints_batch",
    "shingle_hash32",
    "shingle_hash64",
    "shingles",
    "signature_for_text",
    "unpack_shingles",
]

Key = Hashable
U64Array = npt.NDArray[np.uint64]
U32Array = npt.NDArray[np.uint32]

DEFAULT_THRESHOLD = 0.8
DEFAULT_MIN_RECALL = 0.98
DEFAULT_NUM_PERM = 128
DEFAULT_SHINGLE_SIZE = 5

_MASK64 = (1 << 64) - 1
_MASK32 = (1 << 32) - 1
# Odd 64-bit multiplier (from splitmix64) for the order-sensitive polynomial
# that folds word hashes into a shingle hash and band values into a band hash.
_POLY = 0x9E3779B97F4A7C15
_FMIX64 = (33, 0xFF51AFD7ED558CCD, 33, 0xC4CEB9FE1A85EC53, 33)
_FMIX32 = (16, 0x85EBCA6B, 13, 0xC2B2AE35, 16)

# Buckets bigger than this emit a star (first member paired with each other
# member) instead of all pairs; without it one boilerplate paragraph shared by
# thousands of texts would make verification quadratic.
_MAX_BUCKET_ALL_PAIRS = 64
# Roughly 16k shingles x 128 permutations x 4 bytes = 8 MiB working buffer,
# sized to stay in cache; bigger chunks measured slower.
_SHINGLES_PER_CHUNK = 16_384
_WORD_CACHE_LIMIT = 1 << 19
_WORDS_PER_CHUNK = 1 << 18


class SchemeMismatchError(ValueError):
    """Raised when signatures (or an index) from different schemes meet."""


# ---------------------------------------------------------------------------
# Scheme


@dataclass(frozen=True)
class SignatureScheme:
    """Everything that determines a signature's hash values.

    ``id`` is a stable string to store next to each signature; two signatures
    are comparable only when their ids are equal. The datasketch version is
    part of the id because the permutation parameters come from datasketch
    (2.0.0 already changed them once); upgrading it means re-signing, which is
    cheap compared with silently wrong similarities.
    """

    num_perm: int = DEFAULT_NUM_PERM
    seed: int = 1
    shingle_size: int = DEFAULT_SHINGLE_SIZE
    permutation: str = "affine32"
    shingle_hash: str = "blake2b64poly"
    datasketch_version: str = datasketch.__version__

    def __post_init__(self) -> None:
        if self.num_perm < 2:
            raise ValueError("num_perm must be at least 2")
        if self.shingle_size < 1:
            raise ValueError("shingle_size must be at least 1")
        if self.permutation != "affine32":
            raise ValueError("only the datasketch 'affine32' permutation scheme is supported")
        if self.shingle_hash != "blake2b64poly":
            raise ValueError(f"unknown shingle hash {self.shingle_hash!r}")

    @property
    def id(self) -> str:
        return (
            f"minhash-{self.permutation}-{self.shingle_hash}"
            f"-k{self.shingle_size}-p{self.num_perm}-s{self.seed}"
            f"-datasketch{self.datasketch_version}"
        )

    @classmethod
    def from_id(cls, scheme_id: str) -> SignatureScheme:
        match = _SCHEME_ID_RE.fullmatch(scheme_id)
        if match is None:
            raise ValueError(f"not a signature scheme id: {scheme_id!r}")
        return cls(
            permutation=match["perm"],
            shingle_hash=match["hash"],
            shingle_size=int(match["k"]),
            num_perm=int(match["p"]),
            seed=int(match["s"]),
            datasketch_version=match["ds"],
        )

    def require_same(self, other: SignatureScheme) -> None:
        if self.id != other.id:
            raise SchemeMismatchError(
                f"signature schemes differ: {self.id!r} vs {other.id!r}; "
                "re-sign one side with the other's scheme before comparing"
            )

    def permutations(self) -> tuple[U32Array, U32Array]:
        """The ``(a, b)`` affine permutation parameters, taken from datasketch."""
        if self.datasketch_version != datasketch.__version__:
            raise SchemeMismatchError(
                f"scheme {self.id!r} needs datasketch {self.datasketch_version}, "
                f"but {datasketch.__version__} is installed; signatures can be compared "
                "but not computed"
            )
        return _permutations(self.num_perm, self.seed)


_SCHEME_ID_RE = re.compile(
    r"minhash-(?P<perm>\w+)-(?P<hash>\w+)-k(?P<k>\d+)-p(?P<p>\d+)-s(?P<s>\d+)"
    r"-datasketch(?P<ds>[\w.+-]+)"
)


@cache
def _permutations(num_perm: int, seed: int) -> tuple[U32Array, U32Array]:
    perms = MinHash(num_perm=num_perm, seed=seed, scheme="affine32").permutations
    a = np.ascontiguousarray(perms[0], dtype=np.uint32)
    b = np.ascontiguousarray(perms[1], dtype=np.uint32)
    a.flags.writeable = False
    b.flags.writeable = False
    return a, b


# ---------------------------------------------------------------------------
# LSH parameters


def lsh_candidate_probability(j: float, bands: int, rows: int) -> float:
    """Probability that two sets with Jaccard ``j`` share at least one band.

    Each signature row agrees with probability ``j``, a band of ``rows`` rows
    with ``j**rows``, so ``P(j) = 1 - (1 - j**rows) ** bands``.
    """
    return 1.0 - (1.0 - j**rows) ** bands


def choose_lsh_params(
    num_perm: int = DEFAULT_NUM_PERM,
    threshold: float = DEFAULT_THRESHOLD,
    min_recall: float = DEFAULT_MIN_RECALL,
) -> tuple[int, int]:
    """Return ``(bands, rows)`` that catch a pair at ``threshold`` with ``min_recall``.

    datasketch's own optimiser balances false positives against false
    negatives and picks 9x13 for threshold 0.8 at 128 permutations, which
    finds a pair at exactly J=0.8 only ``1-(1-0.8**13)**9`` = 40% of the time.
    We verify every candidate exactly, so false positives cost only CPU while
    false negatives are lost forever; recall is the constraint.

    Rule: take the largest ``rows`` for which some ``bands <= num_perm // rows``
    reaches ``min_recall`` at ``threshold``, then the most bands that fit.
    More rows make the S-curve steeper (fewer low-similarity candidates to
    verify); extra bands only add recall. For 128 permutations at 0.8:

    ====== ================ ================= ======================
    b x r  P(J=0.8)         P(J=0.5)          note
    ====== ================ ================= ======================
    9x13   0.40             0.001             datasketch's choice
    14x8   0.924            0.053             short of 0.98
    18x7   0.986            0.131             chosen
    21x6   0.998            0.281             2x the candidates
    ====== ================ ================= ======================

    ``rows=8`` would need 22 bands (176 permutations), so 18x7 it is.
    """
    if not 0.0 < threshold <= 1.0:
        raise ValueError("threshold must be in (0, 1]")
    if not 0.0 < min_recall < 1.0:
        raise ValueError("min_recall must be in (0, 1)")
    for rows in range(num_perm // 2, 0, -1):
        bands = num_perm // rows
        if bands >= 2 and lsh_candidate_probability(threshold, bands, rows) >= min_recall:
            return bands, rows
    raise ValueError(
        f"no bands x rows within {num_perm} permutations reaches recall {min_recall} at Jaccard {threshold}"
    )


# ---------------------------------------------------------------------------
# Shingles


def _word_hash(word: str) -> int:
    return int.from_bytes(hashlib.blake2b(word.encode("utf-8"), digest_size=8).digest(), "little")


class _WordIds(dict[str, int]):
    """Dense ids for words; unseen words get the next id and wait to be hashed.

    Going through small ids lets a whole batch be looked up with one
    ``np.fromiter(map(...))`` and the 64-bit hashes gathered by numpy, instead
    of materialising 64-bit Python ints for every word.
    """

    def __init__(self) -> None:
        super().__init__()
        self.pending: list[str] = []

    def __missing__(self, word: str) -> int:
        word_id = len(self)
        self[word] = word_id
        self.pending.append(word)
        return word_id


_WORD_IDS = _WordIds()
_WORD_HASHES: U64Array = np.empty(0, dtype=np.uint64)
_WORD_LOCK = threading.Lock()


def _word_hash_array(words: list[str]) -> U64Array:
    global _WORD_HASHES
    with _WORD_LOCK:
        # A long-running worker sees an open-ended vocabulary; a full reset is
        # crude but bounds memory without per-word LRU bookkeeping.
        if len(_WORD_IDS) > _WORD_CACHE_LIMIT:
            _WORD_IDS.clear()
            _WORD_HASHES = np.empty(0, dtype=np.uint64)
        ids = np.fromiter(map(_WORD_IDS.__getitem__, words), dtype=np.int64, count=len(words))
        if _WORD_IDS.pending:
            fresh = np.fromiter(
                map(_word_hash, _WORD_IDS.pending), dtype=np.uint64, count=len(_WORD_IDS.pending)
            )
            _WORD_HASHES = np.concatenate([_WORD_HASHES, fresh])
            _WORD_IDS.pending.clear()
        return _WORD_HASHES[ids]


def _fmix64_int(value: int) -> int:
    s1, m1, s2, m2, s3 = _FMIX64
    value ^= value >> s1
    value = (value * m1) & _MASK64
    value ^= value >> s2
    value = (value * m2) & _MASK64
    return value ^ (value >> s3)


def _fmix64(values: U64Array) -> U64Array:
    s1, m1, s2, m2, s3 = (np.uint64(c) for c in _FMIX64)
    values = values ^ (values >> s1)
    values *= m1
    values ^= values >> s2
    values *= m2
    values ^= values >> s3
    return values


def _fmix32(values: U32Array) -> U32Array:
    s1, m1, s2, m2, s3 = (np.uint32(c) for c in _FMIX32)
    values = values ^ (values >> s1)
    values *= m1
    values ^= values >> s2
    values *= m2
    values ^= values >> s3
    return values


def shingles(text: str, size: int = DEFAULT_SHINGLE_SIZE) -> list[str]:
    """Word shingles of ``canonical_form(text)``, space-joined, in text order.

    Fewer than ``size`` words give one shingle of all of them; a blank text
    gives none. Repeated shingles are kept (a MinHash ignores repeats).
    """
    words = canonical_words(text)
    if not words:
        return []
    if len(words) < size:
        return [" ".join(words)]
    return [" ".join(words[i : i + size]) for i in range(len(words) - size + 1)]


def shingle_hash64(shingle: str) -> int:
    """64-bit fingerprint of one space-joined shingle.

    ``fmix64(poly(blake2b64(w1), ..., blake2b64(wk)))``: words are hashed once
    each, so the batch path can fingerprint every window with vector
    arithmetic instead of hashing ~400 strings per document.
    """
    acc = 0
    for position, word_hash in enumerate(map(_word_hash, shingle.split(" "))):
        acc = word_hash if position == 0 else (acc * _POLY + word_hash) & _MASK64
    return _fmix64_int(acc)


def shingle_hash32(shingle: str) -> int:
    """The 32-bit value MinHash sees for a shingle: the low half of ``shingle_hash64``."""
    return shingle_hash64(shingle) & _MASK32


def shingle_fingerprints_batch(
    texts: Sequence[str], size: int = DEFAULT_SHINGLE_SIZE
) -> tuple[U64Array, npt.NDArray[np.int64]]:
    """Fingerprints of all shingles of ``texts``, concatenated, plus offsets.

    Text ``i`` owns ``fingerprints[offsets[i]:offsets[i + 1]]`` in text order,
    with repeats (use :func:`shingle_fingerprints` for a deduplicated set).
    """
    words: list[str] = []
    lengths = np.zeros(len(texts), dtype=np.int64)
    for index, text in enumerate(texts):
        text_words = canonical_words(text)
        lengths[index] = len(text_words)
        words.extend(text_words)
    return _fingerprints_from_words(words, lengths, size)


def _fingerprints_from_words(
    words: list[str], lengths: npt.NDArray[np.int64], size: int
) -> tuple[U64Array, npt.NDArray[np.int64]]:
    """Fingerprints for texts whose words are concatenated in ``words``."""
    total = len(words)
    word_hashes = _word_hash_array(words)
    counts = np.where(lengths >= size, lengths - size + 1, np.minimum(lengths, 1))
    out_offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(counts, out=out_offsets[1:])
    out = np.empty(int(out_offsets[-1]), dtype=np.uint64)

    word_offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=word_offsets[1:])
    long_docs = np.flatnonzero(lengths >= size)
    if long_docs.size and total >= size:
        # Fold every window of the concatenated stream at once; windows that
        # straddle two texts are computed and then simply never selected.
        windows = total - size + 1
        acc = word_hashes[:windows].copy()
        poly = np.uint64(_POLY)
        for shift in range(1, size):
            acc *= poly
            acc += word_hashes[shift : shift + windows]
        acc = _fmix64(acc)
        long_counts = counts[long_docs]
        within = np.arange(int(long_counts.sum()), dtype=np.int64) - np.repeat(
            np.cumsum(long_counts) - long_counts, long_counts
        )
        src = np.repeat(word_offsets[long_docs], long_counts) + within
        dst = np.repeat(out_offsets[long_docs], long_counts) + within
        out[dst] = acc[src]
    for doc in np.flatnonzero((lengths > 0) & (lengths < size)):
        start, stop = int(word_offsets[doc]), int(word_offsets[doc + 1])
        acc_int = 0
        for position, word_hash in enumerate(word_hashes[start:stop].tolist()):
            acc_int = word_hash if position == 0 else (acc_int * _POLY + word_hash) & _MASK64
        out[out_offsets[doc]] = _fmix64_int(acc_int)
    return out, out_offsets


def shingle_fingerprints(text: str, size: int = DEFAULT_SHINGLE_SIZE) -> U64Array:
    """The shingle set of ``text`` as a sorted, unique ``uint64`` array."""
    fingerprints, _ = shingle_fingerprints_batch([text], size)
    return np.unique(fingerprints)


def pack_shingles(fingerprints: U64Array) -> bytes:
    """Serialise a shingle set (for a DB column); little-endian uint64."""
    return np.unique(fingerprints).astype("<u8").tobytes()


def unpack_shingles(data: bytes) -> U64Array:
    if len(data) % 8:
        raise ValueError("shingle data must be a multiple of 8 bytes")
    return np.frombuffer(data, dtype="<u8").astype(np.uint64)


def jaccard(a: U64Array, b: U64Array) -> float:
    """Exact Jaccard of two sorted unique fingerprint arrays.

    Two empty sets count as identical (1.0): both come from blank texts, which
    are exact duplicates of each other anyway.
    """
    if a.size == 0 and b.size == 0:
        return 1.0
    inter = np.intersect1d(a, b, assume_unique=True).size
    return inter / (a.size + b.size - inter)


# ---------------------------------------------------------------------------
# Signatures


_SIGNATURE_MAGIC = b"FWMH"
_SIGNATURE_FORMAT = 1


@dataclass(frozen=True, eq=False)
class Signature:
    """A MinHash signature together with the scheme that produced it."""

    scheme: SignatureScheme
    hashvalues: U32Array

    def __post_init__(self) -> None:
        if self.hashvalues.shape != (self.scheme.num_perm,):
            raise ValueError(
                f"expected {self.scheme.num_perm} hash values, got shape {self.hashvalues.shape}"
            )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Signature):
            return NotImplemented
        return self.scheme == other.scheme and bool(np.array_equal(self.hashvalues, other.hashvalues))

    __hash__ = None  # type: ignore[assignment]

    def is_empty(self) -> bool:
        return bool(np.all(self.hashvalues == np.uint32(_MASK32)))

    def estimate_jaccard(self, other: Signature) -> float:
        """MinHash estimate of Jaccard; raises on a scheme mismatch."""
        self.scheme.require_same(other.scheme)
        return float(np.count_nonzero(self.hashvalues == other.hashvalues)) / self.scheme.num_perm

    def to_datasketch(self) -> LeanMinHash:
        return LeanMinHash(seed=self.scheme.seed, hashvalues=self.hashvalues, scheme="affine32")

    def to_bytes(self) -> bytes:
        """``FWMH``, format byte, scheme id (u16 length + UTF-8), uint32 LE values."""
        scheme_id = self.scheme.id.encode("utf-8")
        return (
            _SIGNATURE_MAGIC
            + struct.pack("<BH", _SIGNATURE_FORMAT, len(scheme_id))
            + scheme_id
            + self.hashvalues.astype("<u4").tobytes()
        )

    @classmethod
    def from_bytes(cls, data: bytes, *, expected: SignatureScheme | None = None) -> Signature:
        """Inverse of :meth:`to_bytes`; with ``expected``, refuse other schemes."""
        if data[:4] != _SIGNATURE_MAGIC or len(data) < 7:
            raise ValueError("not a serialised signature")
        version, id_length = struct.unpack_from("<BH", data, 4)
        if version != _SIGNATURE_FORMAT:
            raise ValueError(f"unsupported signature format {version}")
        scheme = SignatureScheme.from_id(data[7 : 7 + id_length].decode("utf-8"))
        if expected is not None:
            expected.require_same(scheme)
        values = np.frombuffer(data, dtype="<u4", offset=7 + id_length).astype(np.uint32)
        return cls(scheme=scheme, hashvalues=values)


def _minhash_matrix(
    fingerprints: U64Array, offsets: npt.NDArray[np.int64], scheme: SignatureScheme
) -> U32Array:
    """Signatures as a ``(num_docs, num_perm)`` uint32 matrix.

    Same arithmetic as datasketch's affine32 ``update_batch``: pre-mix the
    32-bit input with fmix32, apply ``a*h + b mod 2**32`` per permutation and
    keep the minimum. The work runs permutation-major so the per-document
    minimum is a contiguous ``reduceat`` (3x faster than document-major).
    """
    a, b = scheme.permutations()
    num_docs = len(offsets) - 1
    nonempty = np.diff(offsets) > 0
    result = np.full((scheme.num_perm, num_docs), _MASK32, dtype=np.uint32)
    hashed = _fmix32((fingerprints & np.uint64(_MASK32)).astype(np.uint32))
    buffer = np.empty((scheme.num_perm, _SHINGLES_PER_CHUNK), dtype=np.uint32)
    a_col, b_col = a[:, None], b[:, None]
    # Fixed-width slices of the shingle stream, so one 300k-word document
    # cannot blow the buffer up; a document cut by a slice boundary gets the
    # minimum of its partial minima.
    for start in range(0, hashed.size, _SHINGLES_PER_CHUNK):
        stop = min(start + _SHINGLES_PER_CHUNK, hashed.size)
        work = buffer[:, : stop - start]
        np.multiply(a_col, hashed[None, start:stop], out=work)
        np.add(work, b_col, out=work)
        first = int(np.searchsorted(offsets, start, side="right")) - 1
        last = int(np.searchsorted(offsets, stop - 1, side="right")) - 1
        docs = np.arange(first, last + 1)
        # Empty documents own no column; reduceat would misreport them.
        docs = docs[nonempty[docs]]
        segment_starts = np.maximum(offsets[docs], start) - start
        partial = np.minimum.reduceat(work, segment_starts, axis=1)
        result[:, docs] = np.minimum(result[:, docs], partial)
    return np.ascontiguousarray(result.T)


def compute_signatures(texts: Sequence[str], scheme: SignatureScheme | None = None) -> list[Signature]:
    """Signatures for many texts at once (the fast path; batch 1,000+ texts)."""
    scheme = scheme or SignatureScheme()
    fingerprints, offsets = shingle_fingerprints_batch(texts, scheme.shingle_size)
    matrix = _minhash_matrix(fingerprints, offsets, scheme)
    return [Signature(scheme=scheme, hashvalues=row) for row in matrix]


def signature_for_text(text: str, scheme: SignatureScheme | None = None) -> Signature:
    return compute_signatures([text], scheme)[0]


def sketch(hashvalues: U32Array) -> bytes:
    """The low 16 bits of each MinHash value, little-endian: a quarter of the signature.

    Two signatures that agree on a band agree on its sketch too, so the pairs that share a
    sketch band are a superset of the LSH candidates under the same banding. With 16 bits a
    value and at least 2 rows a band, unrelated texts share a sketch band about once in 2^32
    tries per band, so checking the few extra pairs against the full signatures is cheap.
    """
    return (np.asarray(hashvalues, dtype=np.uint32) & np.uint32(0xFFFF)).astype("<u2").tobytes()


def unpack_sketches(data: bytes, num_perm: int = DEFAULT_NUM_PERM) -> npt.NDArray[np.uint16]:
    """Concatenated sketches as a ``(n, num_perm)`` array."""
    return np.frombuffer(data, dtype="<u2").reshape(-1, num_perm)


def lsh_band_hashes(matrix: U32Array | npt.NDArray[np.uint16], bands: int, rows: int) -> U64Array:
    """``(num_docs, bands)`` 64-bit hashes of each band of a signature matrix.

    Two documents share a band exactly when their band hashes are equal (bar a
    2^-64 accident, which verification would reject anyway). Eight bytes per
    band instead of datasketch's bytes-keyed dict-of-sets is what keeps the
    batch path's index near 150 bytes per document.
    """
    if bands * rows > matrix.shape[1]:
        raise ValueError(f"{bands}x{rows} needs {bands * rows} hash values, have {matrix.shape[1]}")
    banded = matrix[:, : bands * rows].reshape(matrix.shape[0], bands, rows).astype(np.uint64)
    acc = banded[:, :, 0].copy()
    poly = np.uint64(_POLY)
    for row in range(1, rows):
        acc *= poly
        acc += banded[:, :, row]
    return _fmix64(acc)


# ---------------------------------------------------------------------------
# Incremental index


@dataclass(frozen=True)
class Match:
    key: Key
    jaccard: float


_BASENAME_RE = re.compile(r"[A-Za-z0-9_.:-]{1,100}")


class _VerifyingIndex:
    """What both index flavours share: scheme checks and exact verification."""

    scheme: SignatureScheme
    threshold: float
    params: tuple[int, int]

    def query(self, signature: Signature) -> list[Key]:
        raise NotImplementedError

    def find_matches(
        self,
        signature: Signature,
        shingle_set: U64Array,
        fetch_shingles: Callable[[list[Key]], Mapping[Key, U64Array]],
        *,
        threshold: float | None = None,
        exclude: Key | None = None,
    ) -> list[Match]:
        """Verified near duplicates, most similar first.

        ``fetch_shingles`` receives all candidate keys at once (one DB query)
        and returns their shingle sets; a key it omits (deleted meanwhile) is
        skipped. Candidates below ``threshold`` (default: the index's) are
        dropped, so every returned match is a real one.
        """
        limit = self.threshold if threshold is None else threshold
        candidates = [key for key in self.query(signature) if key != exclude]
        if not candidates:
            return []
        stored = fetch_shingles(candidates)
        matches = []
        for key in candidates:
            other = stored.get(key)
            if other is None:
                continue
            score = jaccard(shingle_set, other)
            if score >= limit:
                matches.append(Match(key=key, jaccard=score))
        matches.sort(key=lambda match: (-match.jaccard, repr(match.key)))
        return matches


class NearDupIndex(_VerifyingIndex):
    """A MinHash LSH index with explicit bands x rows and exact verification.

    Wraps :class:`datasketch.MinHashLSH`. Without ``redis_url`` the index lives
    in process memory, at about 5.5 KB per document in datasketch's dict
    storage (:class:`CompactNearDupIndex` needs ~0.4 KB). With
    ``redis_url`` it lives in Redis under ``name`` and is shared by every
    worker that opens the same name; the scheme id is stored alongside, and
    opening an index with a different scheme raises
    :class:`SchemeMismatchError`. datasketch's Redis layout (a hash entry and
    a set per band per document) costs ~9 KB of Redis memory per document, so
    budget ~9 GB per million indexed texts.
    """

    def __init__(
        self,
        *,
        scheme: SignatureScheme | None = None,
        threshold: float = DEFAULT_THRESHOLD,
        params: tuple[int, int] | None = None,
        redis_url: str | None = None,
        name: str | None = None,
    ) -> None:
        self.scheme = scheme or SignatureScheme()
        self.threshold = threshold
        self.params = params or choose_lsh_params(self.scheme.num_perm, threshold)
        self._redis: Any = None
        storage_config: dict[str, Any] = {"type": "dict"}
        if redis_url is not None:
            if name is None or not _BASENAME_RE.fullmatch(name):
                raise ValueError("a Redis-backed index needs a name of [A-Za-z0-9_.:-]{1,100}")
            import redis
            from redis.connection import SSLConnection, parse_url

            options = parse_url(redis_url)
            if options.pop("connection_class", None) is SSLConnection:
                options["ssl"] = True
            # The trailing separator keeps index "a" from owning index "ab"'s keys.
            self._prefix = f"flywheel:lsh:{name}:".encode()
            self._redis = redis.Redis(**options)
            self._claim_scheme()
            storage_config = {"type": "redis", "redis": options, "basename": self._prefix}
        self._lsh = MinHashLSH(
            num_perm=self.scheme.num_perm, params=self.params, storage_config=storage_config
        )

    @property
    def redis(self) -> Any:
        """The Redis client of a Redis-backed index (``None`` in memory), for callers'
        own bookkeeping keys next to the index."""
        return self._redis

    @property
    def layout(self) -> str:
        """Scheme id plus banding: what must match for two processes to share the index."""
        return f"{self.scheme.id};bands={self.params[0]};rows={self.params[1]}"

    def _claim_scheme(self) -> None:
        layout_key = self._prefix + b"layout"
        # SET NX, then read back: whichever process got there first defines the
        # index, and everyone else must agree with it.
        self._redis.set(layout_key, self.layout.encode(), nx=True)
        stored = self._redis.get(layout_key)
        if stored is not None and stored.decode() != self.layout:
            raise SchemeMismatchError(
                f"index {self._prefix.decode()!r} was built as {stored.decode()!r}, "
                f"not {self.layout!r}; rebuild it or open it with the same scheme and params"
            )

    def insert(self, key: Key, signature: Signature) -> None:
        self.scheme.require_same(signature.scheme)
        self._lsh.insert(key, signature.to_datasketch())

    def insert_many(self, items: Iterable[tuple[Key, Signature]]) -> None:
        """Insert in one buffered session (one Redis round trip per 50k commands)."""
        with self._lsh.insertion_session() as session:
            for key, signature in items:
                self.scheme.require_same(signature.scheme)
                session.insert(key, signature.to_datasketch())

    def remove(self, key: Key) -> None:
        self._lsh.remove(key)

    def __contains__(self, key: Key) -> bool:
        return key in self._lsh

    def query(self, signature: Signature) -> list[Key]:
        """Unverified LSH candidates: may contain false positives."""
        self.scheme.require_same(signature.scheme)
        return list(self._lsh.query(signature.to_datasketch()))

    def drop(self) -> None:
        """Delete everything this index stored in Redis (no-op in memory)."""
        if self._redis is None:
            self._lsh = MinHashLSH(num_perm=self.scheme.num_perm, params=self.params)
            return
        pattern = re.sub(r"([*?\[\]\\])", r"\\\1", self._prefix.decode()).encode() + b"*"
        batch: list[bytes] = []
        for redis_key in self._redis.scan_iter(match=pattern, count=1000):
            batch.append(redis_key)
            if len(batch) >= 1000:
                self._redis.delete(*batch)
                batch.clear()
        if batch:
            self._redis.delete(*batch)


class CompactNearDupIndex(_VerifyingIndex):
    """An in-process LSH index at ~0.4 KB per document instead of datasketch's ~5.5 KB.

    Each band keeps its 64-bit band hashes sorted in a numpy array next to the
    row they belong to, so a query is one binary search per band. New rows
    wait in a small unsorted buffer that queries scan directly; the buffer is
    merged (re-sorted) once it exceeds 1/8 of the index, which keeps inserts
    amortised O(log n). Removal leaves a tombstone that the next merge drops.
    Same answers as :class:`NearDupIndex` for the same params (a test checks);
    not thread-safe, not shared between processes: rebuild it from stored
    signatures (:meth:`insert_many` takes ~1M signatures in a few seconds).
    """

    def __init__(
        self,
        *,
        scheme: SignatureScheme | None = None,
        threshold: float = DEFAULT_THRESHOLD,
        params: tuple[int, int] | None = None,
    ) -> None:
        self.scheme = scheme or SignatureScheme()
        self.threshold = threshold
        self.params = params or choose_lsh_params(self.scheme.num_perm, threshold)
        if self.params[0] * self.params[1] > self.scheme.num_perm:
            raise ValueError(
                f"{self.params[0]}x{self.params[1]} needs more than {self.scheme.num_perm} values"
            )
        bands = self.params[0]
        self._keys: list[Key | None] = []
        self._rows: dict[Key, int] = {}
        self._sorted_hashes = [np.empty(0, dtype=np.uint64) for _ in range(bands)]
        self._sorted_rows = [np.empty(0, dtype=np.int64) for _ in range(bands)]
        self._pending_hashes: list[U64Array] = []
        self._pending_rows: list[int] = []
        self._tombstones = 0

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, key: Key) -> bool:
        return key in self._rows

    def _band_hashes(self, signatures: Sequence[Signature]) -> U64Array:
        for signature in signatures:
            self.scheme.require_same(signature.scheme)
        matrix = np.stack([signature.hashvalues for signature in signatures])
        return lsh_band_hashes(matrix, *self.params)

    def insert(self, key: Key, signature: Signature) -> None:
        self.insert_many([(key, signature)])

    def insert_many(self, items: Iterable[tuple[Key, Signature]]) -> None:
        pairs = list(items)
        if not pairs:
            return
        keys = [key for key, _ in pairs]
        if len(set(keys)) != len(keys) or any(key in self._rows for key in keys):
            raise ValueError("the given key already exists")
        hashes = self._band_hashes([signature for _, signature in pairs])
        for key, band_hashes in zip(keys, hashes, strict=True):
            row = len(self._keys)
            self._keys.append(key)
            self._rows[key] = row
            self._pending_rows.append(row)
            self._pending_hashes.append(band_hashes)
        if len(self._pending_rows) > max(1024, len(self._rows) // 8):
            self._merge()

    def remove(self, key: Key) -> None:
        row = self._rows.pop(key, None)
        if row is None:
            raise ValueError("the given key does not exist")
        self._keys[row] = None
        self._tombstones += 1

    def _merge(self) -> None:
        alive = np.array([key is not None for key in self._keys], dtype=bool)
        # Renumber rows densely, dropping tombstones, so arrays do not keep
        # growing under insert/remove churn.
        new_row = np.cumsum(alive) - 1
        pending_rows = np.array(self._pending_rows, dtype=np.int64)
        pending_hashes = (
            np.stack(self._pending_hashes)
            if self._pending_hashes
            else np.empty((0, self.params[0]), np.uint64)
        )
        for band in range(self.params[0]):
            rows = np.concatenate([self._sorted_rows[band], pending_rows])
            hashes = np.concatenate([self._sorted_hashes[band], pending_hashes[:, band]])
            keep = alive[rows]
            rows, hashes = new_row[rows[keep]], hashes[keep]
            order = np.argsort(hashes, kind="stable")
            self._sorted_hashes[band] = hashes[order]
            self._sorted_rows[band] = rows[order]
        self._keys = [key for key in self._keys if key is not None]
        self._rows = {key: row for row, key in enumerate(self._keys)}
        self._pending_rows.clear()
        self._pending_hashes.clear()
        self._tombstones = 0

    def query(self, signature: Signature) -> list[Key]:
        """Unverified LSH candidates: may contain false positives."""
        wanted = self._band_hashes([signature])[0]
        rows: list[int] = []
        for band in range(self.params[0]):
            hashes = self._sorted_hashes[band]
            low = int(np.searchsorted(hashes, wanted[band], side="left"))
            high = int(np.searchsorted(hashes, wanted[band], side="right"))
            rows.extend(self._sorted_rows[band][low:high].tolist())
        if self._pending_hashes:
            hits = np.any(np.stack(self._pending_hashes) == wanted, axis=1)
            rows.extend(np.array(self._pending_rows)[hits].tolist())
        found = dict.fromkeys(self._keys[row] for row in rows)
        return [key for key in found if key is not None]


# ---------------------------------------------------------------------------
# Batch deduplication


@dataclass(frozen=True)
class VerifiedPair:
    """Two documents at or above the threshold; ``a`` precedes ``b`` in input order."""

    a: Key
    b: Key
    jaccard: float
    exact: bool = False


@dataclass
class NearDuplicatePairs:
    """Result of :func:`find_near_duplicate_pairs`, with counts for reporting."""

    keys: list[Key]
    pairs: list[VerifiedPair]
    candidate_pairs: int = 0
    rejected_pairs: int = 0
    exact_pairs: int = 0
    params: tuple[int, int] = (0, 0)
    band_hash_bytes: int = 0


@dataclass(frozen=True)
class Cluster:
    """A group of near duplicates; keep ``representative``, drop ``duplicates``."""

    representative: Key
    members: tuple[Key, ...]

    @property
    def duplicates(self) -> tuple[Key, ...]:
        return tuple(key for key in self.members if key != self.representative)


def _candidate_pairs(band_hashes: U64Array) -> npt.NDArray[np.int64]:
    """Unique candidate pairs ``i * n + j`` (``i < j``) from equal band hashes."""
    n = band_hashes.shape[0]
    found: list[npt.NDArray[np.int64]] = []
    for band in range(band_hashes.shape[1]):
        column = band_hashes[:, band]
        order = np.argsort(column, kind="stable")
        ordered = column[order]
        same = ordered[1:] == ordered[:-1]
        if not same.any():
            continue
        # Runs of equal hashes: start where a value differs from its left
        # neighbour, keep runs of length >= 2.
        boundaries = np.flatnonzero(np.concatenate(([True], ~same, [True])))
        starts, stops = boundaries[:-1], boundaries[1:]
        sizes = stops - starts
        twos = starts[sizes == 2]
        if twos.size:
            # Most buckets that collide at all are a single pair; do those
            # without a Python loop.
            first, second = order[twos].astype(np.int64), order[twos + 1].astype(np.int64)
            found.append(np.minimum(first, second) * n + np.maximum(first, second))
        multi = sizes > 2
        for start, stop in zip(starts[multi].tolist(), stops[multi].tolist(), strict=True):
            members = np.sort(order[start:stop]).astype(np.int64)
            if members.size <= _MAX_BUCKET_ALL_PAIRS:
                left, right = np.triu_indices(members.size, k=1)
                found.append(members[left] * n + members[right])
            else:
                found.append(members[0] * n + members[1:])
    if not found:
        return np.empty(0, dtype=np.int64)
    return np.unique(np.concatenate(found))


def _shingle_sets(texts: Sequence[str], scheme: SignatureScheme) -> list[U64Array]:
    """Sorted unique fingerprint sets, computed a word budget at a time."""
    sets: list[U64Array] = []
    start = 0
    while start < len(texts):
        words: list[str] = []
        lengths: list[int] = []
        stop = start
        while stop < len(texts) and len(words) < _WORDS_PER_CHUNK:
            text_words = canonical_words(texts[stop])
            words.extend(text_words)
            lengths.append(len(text_words))
            stop += 1
        fingerprints, offsets = _fingerprints_from_words(
            words, np.array(lengths, dtype=np.int64), scheme.shingle_size
        )
        sets.extend(np.unique(fingerprints[offsets[i] : offsets[i + 1]]) for i in range(stop - start))
        start = stop
    return sets


def find_near_duplicate_pairs(
    docs: Sequence[tuple[Key, str]],
    threshold: float = DEFAULT_THRESHOLD,
    *,
    scheme: SignatureScheme | None = None,
    params: tuple[int, int] | None = None,
) -> NearDuplicatePairs:
    """All verified pairs with Jaccard >= ``threshold`` among ``docs``.

    Exact duplicates (equal canonical form) are grouped first and reported as
    pairs with their group's first member (``exact=True``, Jaccard 1.0); only
    one text per group goes through MinHash, so a text repeated 10,000 times
    costs one signature, not 50M candidate pairs. An LSH bucket of more than
    64 texts is paired as a star around its first member rather than
    all-pairs, so two near duplicates that share only such a bucket and are
    not both near the first member can be missed; exact duplicates never hit
    this.
    """
    scheme = scheme or SignatureScheme()
    params = params or choose_lsh_params(scheme.num_perm, threshold)
    keys = [key for key, _ in docs]
    if len(set(keys)) != len(keys):
        raise ValueError("document keys must be unique")
    result = NearDuplicatePairs(keys=keys, pairs=[], params=params)

    first_by_form: dict[bytes, int] = {}
    lsh_docs: list[int] = []
    band_chunks: list[U64Array] = []
    chunk_docs: list[int] = []
    words: list[str] = []
    lengths: list[int] = []

    def flush() -> None:
        fingerprints, offsets = _fingerprints_from_words(
            words, np.array(lengths, dtype=np.int64), scheme.shingle_size
        )
        band_chunks.append(lsh_band_hashes(_minhash_matrix(fingerprints, offsets, scheme), *params))
        lsh_docs.extend(chunk_docs)
        chunk_docs.clear()
        words.clear()
        lengths.clear()

    for index, (_, text) in enumerate(docs):
        text_words = canonical_words(text)
        canonical = " ".join(text_words).encode("utf-8")
        first = first_by_form.setdefault(hashlib.blake2b(canonical, digest_size=16).digest(), index)
        if first != index:
            result.pairs.append(VerifiedPair(keys[first], keys[index], 1.0, exact=True))
        elif text_words:
            # Blank texts share the all-max signature; they are exact
            # duplicates of each other and near duplicates of nothing else.
            chunk_docs.append(index)
            words.extend(text_words)
            lengths.append(len(text_words))
            # Word strings cost ~60 B each; flushing by word count keeps peak
            # memory at the chunk, not the corpus. Only band hashes stay.
            if len(words) >= _WORDS_PER_CHUNK:
                flush()
    if chunk_docs:
        flush()
    result.exact_pairs = len(result.pairs)
    if not lsh_docs:
        return result

    band_hashes = np.concatenate(band_chunks)
    band_chunks.clear()
    result.band_hash_bytes = band_hashes.nbytes
    candidates = _candidate_pairs(band_hashes)
    del band_hashes
    result.candidate_pairs = int(candidates.size)
    if not candidates.size:
        return result

    count = len(lsh_docs)
    lefts, rights = candidates // count, candidates % count
    # Shingle sets are recomputed for candidate documents only: cheaper in
    # memory than keeping 8 bytes per shingle for every document.
    involved = np.unique(np.concatenate([lefts, rights])).tolist()
    shingle_sets = dict(
        zip(involved, _shingle_sets([docs[lsh_docs[local]][1] for local in involved], scheme), strict=True)
    )
    for left, right in zip(lefts.tolist(), rights.tolist(), strict=True):
        score = jaccard(shingle_sets[left], shingle_sets[right])
        if score >= threshold:
            result.pairs.append(VerifiedPair(keys[lsh_docs[left]], keys[lsh_docs[right]], score))
        else:
            result.rejected_pairs += 1
    return result


def cluster_pairs(
    keys: Sequence[Key],
    pairs: Iterable[VerifiedPair],
    scores: Mapping[Key, float] | None = None,
) -> list[Cluster]:
    """Connected components (union-find) of ``pairs``; singletons are omitted.

    The representative is the member with the highest ``scores`` value (a
    missing score ranks lowest), ties going to the earliest position in
    ``keys``. Without scores it is simply the earliest. Note that clustering is
    transitive: A~B and B~C put A and C together even if A and C are below the
    threshold, which is what "keep one of each group" needs.
    """
    position = {key: index for index, key in enumerate(keys)}
    parent = list(range(len(keys)))

    def find(node: int) -> int:
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for pair in pairs:
        root_a, root_b = find(position[pair.a]), find(position[pair.b])
        if root_a != root_b:
            parent[max(root_a, root_b)] = min(root_a, root_b)

    groups: dict[int, list[int]] = {}
    for index in range(len(keys)):
        groups.setdefault(find(index), []).append(index)

    clusters = []
    for members in groups.values():
        if len(members) < 2:
            continue
        if scores is None:
            best = members[0]
        else:
            best = min(members, key=lambda i: (-scores.get(keys[i], -math.inf), i))
        clusters.append(Cluster(representative=keys[best], members=tuple(keys[i] for i in members)))
    clusters.sort(key=lambda cluster: position[cluster.members[0]])
    return clusters


def find_near_duplicate_clusters(
    docs: Sequence[tuple[Key, str]],
    threshold: float = DEFAULT_THRESHOLD,
    *,
    scheme: SignatureScheme | None = None,
    params: tuple[int, int] | None = None,
    scores: Mapping[Key, float] | None = None,
) -> list[Cluster]:
    """Groups of exact and near duplicates among ``docs`` (keys must be unique)."""
    found = find_near_duplicate_pairs(docs, threshold, scheme=scheme, params=params)
    return cluster_pairs(found.keys, found.pairs, scores)
