import os
import random
import uuid

import numpy as np
import pytest
from datasketch import MinHash, MinHashLSH

from curation.dedup import (
    CompactNearDupIndex,
    NearDupIndex,
    SchemeMismatchError,
    Signature,
    SignatureScheme,
    choose_lsh_params,
    cluster_pairs,
    compute_signatures,
    find_near_duplicate_clusters,
    find_near_duplicate_pairs,
    jaccard,
    lsh_candidate_probability,
    pack_shingles,
    shingle_fingerprints,
    shingle_hash32,
    shingle_hash64,
    shingles,
    signature_for_text,
    unpack_shingles,
)

LETTERS = "abcdefghijklmnopqrstuvwxyz"


def pseudo_word(index):
    # Letters only: canonical_form folds digits, so "w1" and "w2" would collide.
    chars = []
    index += 26 * 26
    while index:
        index, rest = divmod(index, 26)
        chars.append(LETTERS[rest])
    return "".join(chars)


def random_text(rng, words=400, vocabulary=50_000):
    return " ".join(pseudo_word(rng.randrange(vocabulary)) for _ in range(words))


def edited(rng, text, edits):
    words = text.split()
    for position in rng.sample(range(len(words)), edits):
        # Replacement words come from outside the base vocabulary, so every
        # edit really destroys the shingles around it.
        words[position] = pseudo_word(10_000_000 + rng.randrange(10_000_000))
    return " ".join(words)


def exact_jaccard(a, b):
    return jaccard(shingle_fingerprints(a), shingle_fingerprints(b))


def planted_pair(rng, low, high):
    """A (text, near-copy) pair whose exact 5-shingle Jaccard lies in [low, high]."""
    while True:
        base = random_text(rng)
        # Each scattered edit kills ~5 of the 396 shingles on both sides, so
        # J ~ (396 - 5m) / (396 + 5m); aim there and let the check decide.
        target = rng.uniform(low, high)
        guess = round(396 * (1 - target) / (5 * (1 + target)))
        copy = edited(rng, base, max(1, guess + rng.randint(-1, 1)))
        score = exact_jaccard(base, copy)
        if low <= score <= high:
            return base, copy, score


# --- shingles and signatures -------------------------------------------------


def test_it_shingles_the_canonical_form():
    assert shingles("One, two; THREE four five six!") == [
        "one two three four five",
        "two three four five six",
    ]
    assert shingles("Just three words") == ["just three words"]
    assert shingles(" \n ") == []
    assert shingle_fingerprints("").size == 0
    assert shingle_fingerprints("same same same same same same same").size == 1


def test_it_matches_datasketch_minhash_bit_for_bit():
    rng = random.Random(7)
    texts = [random_text(rng, words=n) for n in (1, 3, 4, 5, 6, 50, 400)]
    texts.append(random_text(rng, words=20_000))  # longer than one vectorised chunk
    texts.append("")
    for text, signature in zip(texts, compute_signatures(texts), strict=True):
        reference = MinHash(num_perm=128, seed=1, scheme="affine32", hashfunc=shingle_hash32)
        reference.update_batch(shingles(text))
        assert np.array_equal(reference.hashvalues, signature.hashvalues)
    assert compute_signatures([""])[0].is_empty()


def test_it_computes_the_same_signature_alone_and_in_a_batch():
    rng = random.Random(8)
    texts = [random_text(rng, words=rng.randint(0, 600)) for _ in range(50)]
    batch = compute_signatures(texts)
    assert all(signature_for_text(t) == s for t, s in zip(texts, batch, strict=True))


def test_it_fingerprints_shingles_like_the_scalar_reference():
    text = "The quick brown fox jumps over the lazy dog again and again"
    expected = sorted({shingle_hash64(s) for s in shingles(text)})
    assert shingle_fingerprints(text).tolist() == expected


def test_it_round_trips_signatures_and_shingles_through_bytes():
    signature = signature_for_text("a reasonably long text with more than five words in it")
    data = signature.to_bytes()
    assert data.startswith(b"FWMH")
    assert signature.scheme.id.encode() in data
    assert Signature.from_bytes(data) == signature
    assert Signature.from_bytes(data, expected=SignatureScheme()) == signature
    fingerprints = shingle_fingerprints("some words to turn into a set of shingles today")
    assert np.array_equal(unpack_shingles(pack_shingles(fingerprints)), fingerprints)
    with pytest.raises(ValueError):
        Signature.from_bytes(b"nope")


def test_it_refuses_to_mix_signature_schemes():
    text = "a reasonably long text with more than five words in it"
    default = signature_for_text(text)
    other = signature_for_text(text, SignatureScheme(seed=2))
    assert other.scheme.id != default.scheme.id
    with pytest.raises(SchemeMismatchError, match="signature schemes differ"):
        default.estimate_jaccard(other)
    with pytest.raises(SchemeMismatchError):
        Signature.from_bytes(other.to_bytes(), expected=default.scheme)
    index = NearDupIndex()
    with pytest.raises(SchemeMismatchError):
        index.insert("a", other)
    with pytest.raises(SchemeMismatchError):
        index.query(other)


def test_it_records_the_datasketch_version_in_the_scheme():
    old = SignatureScheme(datasketch_version="1.6.5")
    assert "datasketch1.6.5" in old.id
    assert SignatureScheme.from_id(old.id) == old
    assert SignatureScheme.from_id(old.id) != SignatureScheme()
    with pytest.raises(SchemeMismatchError, match=r"needs datasketch 1\.6\.5"):
        compute_signatures(["some text"], old)


# --- LSH parameters ----------------------------------------------------------


def test_it_computes_the_lsh_candidate_probability():
    assert lsh_candidate_probability(0.8, 9, 13) == pytest.approx(0.40, abs=0.01)
    assert lsh_candidate_probability(0.8, 14, 8) == pytest.approx(0.924, abs=0.001)
    assert lsh_candidate_probability(0.8, 20, 6) > 0.99
    assert lsh_candidate_probability(1.0, 2, 64) == 1.0
    assert lsh_candidate_probability(0.0, 18, 7) == 0.0


def test_it_chooses_params_that_reach_the_recall_target():
    bands, rows = choose_lsh_params(128, threshold=0.8)
    assert (bands, rows) == (18, 7)
    assert lsh_candidate_probability(0.8, bands, rows) >= 0.98
    # datasketch's own optimiser misses most pairs at exactly the threshold.
    auto = MinHashLSH(threshold=0.8, num_perm=128)
    assert lsh_candidate_probability(0.8, auto.b, auto.r) < 0.5
    for num_perm in (64, 256):
        bands, rows = choose_lsh_params(num_perm)
        assert bands * rows <= num_perm
        assert lsh_candidate_probability(0.8, bands, rows) >= 0.98
    with pytest.raises(ValueError):
        choose_lsh_params(4, threshold=0.5, min_recall=0.999)


# --- batch dedup -------------------------------------------------------------


def test_it_finds_a_planted_near_duplicate_and_ignores_a_half_similar_pair():
    rng = random.Random(1)
    base, near, near_score = planted_pair(rng, 0.83, 0.87)
    other, half, half_score = planted_pair(rng, 0.45, 0.55)
    docs = [("base", base), ("near", near), ("other", other), ("half", half)]
    found = find_near_duplicate_pairs(docs)
    assert [(p.a, p.b) for p in found.pairs] == [("base", "near")]
    assert found.pairs[0].jaccard == pytest.approx(near_score)
    assert half_score < 0.8


def test_it_drops_lsh_candidates_that_fail_verification():
    rng = random.Random(2)
    base, half, score = planted_pair(rng, 0.45, 0.55)
    # 64 bands of 2 rows make a J=0.5 pair a candidate almost surely.
    loose = (64, 2)
    assert lsh_candidate_probability(score, *loose) > 0.999
    found = find_near_duplicate_pairs([(1, base), (2, half)], params=loose)
    assert found.candidate_pairs == 1
    assert found.rejected_pairs == 1
    assert found.pairs == []


def test_it_recalls_planted_pairs_between_080_and_090():
    rng = random.Random(3)
    docs = []
    planted = set()
    scores = []
    for index in range(300):
        base, near, score = planted_pair(rng, 0.80, 0.90)
        docs += [(f"b{index}", base), (f"n{index}", near)]
        planted.add((f"b{index}", f"n{index}"))
        scores.append(score)
    docs += [(f"r{index}", random_text(rng)) for index in range(200)]
    found = find_near_duplicate_pairs(docs)
    reported = {(p.a, p.b) for p in found.pairs}
    assert min(scores) >= 0.8
    assert all(p.jaccard >= 0.8 for p in found.pairs)
    assert reported <= planted  # precision 1.0: nothing unplanted is reported
    assert len(reported & planted) / len(planted) >= 0.98


def test_it_groups_exact_and_near_duplicates():
    rng = random.Random(4)
    base, near, _ = planted_pair(rng, 0.85, 0.95)
    docs = [
        (10, "Unrelated short prompt about cats"),
        (11, base),
        (12, base.upper() + "!!!"),  # exact duplicate after canonicalisation
        (13, near),
        (14, random_text(rng)),
        (15, ""),
        (16, "   "),
    ]
    clusters = find_near_duplicate_clusters(docs)
    assert [c.members for c in clusters] == [(11, 12, 13), (15, 16)]
    assert clusters[0].representative == 11
    assert clusters[0].duplicates == (12, 13)
    found = find_near_duplicate_pairs(docs)
    assert found.exact_pairs == 2
    assert {(p.a, p.b) for p in found.pairs if p.exact} == {(11, 12), (15, 16)}


def test_it_picks_the_best_scored_representative():
    rng = random.Random(5)
    base, near, _ = planted_pair(rng, 0.85, 0.95)
    docs = [("a", base), ("b", near), ("c", base)]
    assert find_near_duplicate_clusters(docs)[0].representative == "a"
    best = find_near_duplicate_clusters(docs, scores={"a": 0.1, "b": 0.9, "c": 0.5})
    assert best[0].representative == "b"
    tie = find_near_duplicate_clusters(docs, scores={"b": 0.5, "c": 0.5})
    assert tie[0].representative == "b"


def test_it_clusters_transitively():
    from curation.dedup import VerifiedPair

    pairs = [VerifiedPair("a", "b", 0.85), VerifiedPair("b", "c", 0.82), VerifiedPair("x", "y", 0.9)]
    clusters = cluster_pairs(["a", "b", "c", "d", "x", "y"], pairs)
    assert [c.members for c in clusters] == [("a", "b", "c"), ("x", "y")]


def test_it_requires_unique_keys():
    with pytest.raises(ValueError, match="unique"):
        find_near_duplicate_pairs([(1, "a"), (1, "b")])


# --- incremental index -------------------------------------------------------


def fetcher(store):
    def fetch(keys):
        return {key: store[key] for key in keys if key in store}

    return fetch


def test_it_returns_verified_matches_from_an_index():
    rng = random.Random(6)
    base, near, near_score = planted_pair(rng, 0.83, 0.9)
    other, half, _ = planted_pair(rng, 0.45, 0.55)
    texts = {"base": base, "other": other, "filler": random_text(rng)}
    store = {key: shingle_fingerprints(text) for key, text in texts.items()}
    index = NearDupIndex(params=(64, 2))  # loose on purpose: J=0.5 becomes a candidate
    index.insert_many(zip(texts, compute_signatures(list(texts.values())), strict=True))
    assert "base" in index

    matches = index.find_matches(signature_for_text(near), shingle_fingerprints(near), fetcher(store))
    assert [(m.key, m.jaccard) for m in matches] == [("base", pytest.approx(near_score))]

    half_signature = signature_for_text(half)
    assert "other" in index.query(half_signature)
    assert index.find_matches(half_signature, shingle_fingerprints(half), fetcher(store)) == []
    assert index.find_matches(signature_for_text(base), store["base"], fetcher(store), exclude="base") == []

    index.remove("base")
    assert "base" not in index


def test_it_answers_like_datasketch_from_the_compact_index():
    rng = random.Random(10)
    texts = []
    for _ in range(700):
        base = random_text(rng, words=120)
        texts += [base, edited(rng, base, rng.randint(1, 12))]
    signatures = compute_signatures(texts)
    reference = NearDupIndex(params=(32, 4))  # loose, so that queries return plenty
    compact = CompactNearDupIndex(params=(32, 4))
    reference.insert_many(enumerate(signatures[:1200]))
    compact.insert_many(enumerate(signatures[:1200]))  # above the merge threshold
    for key, signature in enumerate(signatures[1200:], start=1200):
        reference.insert(key, signature)
        compact.insert(key, signature)  # stays in the unsorted buffer
    for key in range(0, 1400, 7):
        reference.remove(key)
        compact.remove(key)
    assert len(compact) == 1400 - 200
    assert 7 not in compact
    assert 8 in compact
    hits = 0
    for signature in signatures[::5]:
        expected = sorted(reference.query(signature))
        assert sorted(compact.query(signature)) == expected
        hits += len(expected)
    assert hits > len(signatures[::5])  # not trivially empty
    with pytest.raises(ValueError, match="already exists"):
        compact.insert(8, signatures[8])
    with pytest.raises(SchemeMismatchError):
        compact.insert("x", signature_for_text("a b c d e f", SignatureScheme(seed=5)))


def test_it_returns_verified_matches_from_the_compact_index():
    rng = random.Random(11)
    base, near, near_score = planted_pair(rng, 0.83, 0.9)
    other, half, _ = planted_pair(rng, 0.45, 0.55)
    store = {"base": shingle_fingerprints(base), "other": shingle_fingerprints(other)}
    index = CompactNearDupIndex(params=(64, 2))
    index.insert_many(zip(store, compute_signatures([base, other]), strict=True))
    matches = index.find_matches(signature_for_text(near), shingle_fingerprints(near), fetcher(store))
    assert [(m.key, m.jaccard) for m in matches] == [("base", pytest.approx(near_score))]
    assert "other" in index.query(signature_for_text(half))
    assert index.find_matches(signature_for_text(half), shingle_fingerprints(half), fetcher(store)) == []


# --- Redis-backed index ------------------------------------------------------


@pytest.fixture
def redis_url():
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15")
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.RedisError:
        if "REDIS_URL" in os.environ:
            pytest.fail(f"REDIS_URL={url} is set but Redis does not answer")
        pytest.skip("Redis is not reachable and REDIS_URL is not set")
    return url


def redis_keys(url, prefix):
    import redis

    return list(redis.Redis.from_url(url).scan_iter(match=prefix + "*"))


def test_it_shares_a_redis_index_between_processes(redis_url):
    rng = random.Random(9)
    base, near, near_score = planted_pair(rng, 0.83, 0.9)
    other = random_text(rng)
    store = {"base": shingle_fingerprints(base), "other": shingle_fingerprints(other)}
    name = f"test-{uuid.uuid4().hex}"
    writer = NearDupIndex(redis_url=redis_url, name=name)
    try:
        writer.insert_many(zip(["base", "other"], compute_signatures([base, other]), strict=True))
        # A second client (another worker) sees what the first one wrote.
        reader = NearDupIndex(redis_url=redis_url, name=name)
        assert "base" in reader
        matches = reader.find_matches(signature_for_text(near), shingle_fingerprints(near), fetcher(store))
        assert [(m.key, m.jaccard) for m in matches] == [("base", pytest.approx(near_score))]
        assert redis_keys(redis_url, f"flywheel:lsh:{name}:")
    finally:
        writer.drop()
    assert redis_keys(redis_url, f"flywheel:lsh:{name}:") == []


def test_it_refuses_to_open_a_redis_index_with_another_scheme(redis_url):
    name = f"test-{uuid.uuid4().hex}"
    index = NearDupIndex(redis_url=redis_url, name=name)
    try:
        index.insert("k", signature_for_text("some words for the redis scheme check"))
        with pytest.raises(SchemeMismatchError, match="was built as"):
            NearDupIndex(redis_url=redis_url, name=name, scheme=SignatureScheme(seed=3))
        with pytest.raises(SchemeMismatchError):
            NearDupIndex(redis_url=redis_url, name=name, params=(16, 8))
    finally:
        index.drop()
    assert redis_keys(redis_url, f"flywheel:lsh:{name}:") == []


def test_it_requires_a_safe_name_for_redis(redis_url):
    with pytest.raises(ValueError):
        NearDupIndex(redis_url=redis_url, name="bad name*")
    with pytest.raises(ValueError):
        NearDupIndex(redis_url=redis_url)
