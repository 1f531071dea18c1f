"""Near-duplicate detection benchmark: our pipeline vs datatrove and text-dedup.

    python bench/dedup.py                 # 20,000 generated docs + the Debian licence corpus
    python bench/dedup.py --quick         # 3,000 generated docs, ours only
    python bench/dedup.py --write-docs    # also replace the section in docs/benchmarks.md

Every system runs in a fresh child process (peers in their own virtualenvs, see
bench/README.md) on the same JSONL corpus, single-threaded, so wall time,
CPU time and peak RSS are comparable. Ground truth is exact Jaccard of 5-word
shingle sets of the canonical form over every pair that shares a shingle,
found with a sparse incidence-matrix product; it does not use our
fingerprints, MinHash or LSH code. Nothing is written into the repository
unless --write-docs is given.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from curation.dedup import choose_lsh_params, lsh_candidate_probability, shingles  # noqa: E402

THRESHOLD = 0.8
DATATROVE_PYTHON = Path("/work/bench-venvs/datatrove/bin/python")
TEXTDEDUP_PYTHON = Path("/work/bench-venvs/textdedup/bin/python")
DOCS_SECTION = "## Dedup (bench/dedup.py)"

# ---------------------------------------------------------------------------
# Corpora


@dataclass
class Corpus:
    name: str
    texts: list[str]
    notes: str = ""
    planted: dict[str, int] = field(default_factory=dict)


def _pseudo_words(count: int, rng: np.random.Generator) -> list[str]:
    # Letters only: canonicalisation folds digits, so "w12" and "w13" would merge.
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    lengths = rng.integers(2, 10, size=count)
    words = {"".join(rng.choice(letters, size=length)) for length in lengths}
    while len(words) < count:
        words.add("".join(rng.choice(letters, size=int(rng.integers(4, 10)))))
    return sorted(words)[:count]


def generated_corpus(docs: int, seed: int) -> Corpus:
    """``docs`` texts of ~400 words, 15% of them edited copies of earlier ones.

    Words are drawn Zipf-like (p ~ 1/rank^1.1 over 100k words) so that
    independent texts share a few common shingles, as real text does, but
    never come near J=0.8 by chance. Copies substitute a fraction of words
    (the edit rate); J falls ~10x faster than the edit rate because each
    substitution breaks five shingles.
    """
    rng = np.random.default_rng(seed)
    vocabulary = np.array(_pseudo_words(100_000, rng))
    weights = 1.0 / np.arange(1, len(vocabulary) + 1) ** 1.1
    weights /= weights.sum()
    edit_rates = [0.0025, 0.005, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.06, 0.10]
    texts: list[str] = []
    planted: dict[str, int] = {}
    for index in range(docs):
        roll = rng.random()
        if index >= 10 and roll < 0.15:
            source = texts[int(rng.integers(0, index))].split()
            rate = edit_rates[int(rng.integers(0, len(edit_rates)))]
            edits = max(1, round(rate * len(source)))
            positions = rng.choice(len(source), size=edits, replace=False)
            replacements = vocabulary[rng.choice(len(vocabulary), size=edits, p=weights)]
            for position, word in zip(positions, replacements, strict=True):
                source[position] = str(word)
            texts.append(" ".join(source))
            planted[f"{rate:.2%}"] = planted.get(f"{rate:.2%}", 0) + 1
        elif index >= 10 and roll < 0.17:
            # Exact duplicate up to case and punctuation.
            source_text = texts[int(rng.integers(0, index))]
            texts.append(source_text.upper().replace(" ", ", ", 3) + "!")
            planted["exact"] = planted.get("exact", 0) + 1
        else:
            length = int(rng.integers(350, 451))
            words = vocabulary[rng.choice(len(vocabulary), size=length, p=weights)]
            texts.append(" ".join(words.tolist()))
    return Corpus(
        name=f"generated ({docs:,} docs x ~400 words)",
        texts=texts,
        notes="15% edited copies at substitution rates 0.25%-10%, 2% case/punctuation copies",
        planted=planted,
    )


def real_corpus() -> Corpus:
    paths = sorted(glob.glob("/usr/share/doc/*/copyright")) + sorted(
        glob.glob("/usr/share/common-licenses/*")
    )
    seen: set[str] = set()
    texts = []
    for path in paths:
        real = os.path.realpath(path)
        if real in seen or not os.path.isfile(real):
            continue
        seen.add(real)
        text = Path(real).read_text(encoding="utf-8", errors="replace")
        if shingles(text):
            texts.append(text)
    words = sum(len(text.split()) for text in texts)
    return Corpus(
        name=f"real: Debian copyright + common-licenses ({len(texts):,} files)",
        texts=texts,
        notes=f"{words / len(texts):,.0f} words per file on average; symlinked duplicates skipped",
    )


# ---------------------------------------------------------------------------
# Ground truth


@dataclass
class Truth:
    pairs: dict[tuple[int, int], float]
    near_pairs: set[tuple[int, int]]
    component: np.ndarray
    removable: int
    has_partner: np.ndarray
    seconds: float


def ground_truth(texts: Sequence[str], threshold: float = THRESHOLD) -> Truth:
    """Exact Jaccard for every pair sharing at least one shingle.

    Shingle strings are interned with Python's own ``hash`` (SipHash, not the
    fingerprints under test); X @ X.T over the docs x shingles incidence
    matrix gives every intersection size at once.
    """
    started = time.perf_counter()
    rows: list[np.ndarray] = []
    hashes: list[np.ndarray] = []
    for index, text in enumerate(texts):
        values = np.unique(np.fromiter((hash(s) for s in shingles(text)), dtype=np.int64))
        hashes.append(values)
        rows.append(np.full(values.size, index, dtype=np.int64))
    all_hashes = np.concatenate(hashes)
    _, columns = np.unique(all_hashes, return_inverse=True)
    row_index = np.concatenate(rows)
    ones = np.ones(row_index.size, dtype=np.int32)
    incidence = sp.csr_matrix((ones, (row_index, columns)), shape=(len(texts), int(columns.max()) + 1))
    sizes = np.asarray(incidence.sum(axis=1)).ravel()
    overlap = sp.triu(incidence @ incidence.T, k=1).tocoo()
    union = sizes[overlap.row] + sizes[overlap.col] - overlap.data
    scores = overlap.data / union
    pairs = {
        (int(i), int(j)): float(s) for i, j, s in zip(overlap.row, overlap.col, scores, strict=True) if s > 0
    }
    near = {pair for pair, score in pairs.items() if score >= threshold - 1e-12}
    parent = np.arange(len(texts))

    def find(node: int) -> int:
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = int(parent[node])
        return node

    for i, j in near:
        a, b = find(i), find(j)
        if a != b:
            parent[max(a, b)] = min(a, b)
    component = np.array([find(i) for i in range(len(texts))])
    has_partner = np.zeros(len(texts), dtype=bool)
    for i, j in near:
        has_partner[i] = has_partner[j] = True
    return Truth(
        pairs=pairs,
        near_pairs=near,
        component=component,
        removable=len(texts) - len(set(component.tolist())),
        has_partner=has_partner,
        seconds=time.perf_counter() - started,
    )


# ---------------------------------------------------------------------------
# Child processes


_MEASURE = textwrap.dedent(
    """
    import json, os, resource, sys, time

    def rss_kb(field):
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        return 0

    def cpu_seconds():
        own = resource.getrusage(resource.RUSAGE_SELF)
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime

    def load(path):
        with open(path) as handle:
            return [json.loads(line)["text"] for line in handle]

    def report(path, started_wall, started_cpu, base_rss_kb, **extra):
        result = dict(
            wall_s=time.perf_counter() - started_wall,
            cpu_s=cpu_seconds() - started_cpu,
            peak_rss_delta_mb=(rss_kb("VmHWM") - base_rss_kb) / 1024,
            **extra,
        )
        with open(path, "w") as handle:
            json.dump(result, handle)
    """
)

_OURS = _MEASURE + textwrap.dedent(
    """
    import tracemalloc
    sys.path.insert(0, sys.argv[4])
    from curation.dedup import cluster_pairs, find_near_duplicate_pairs

    texts = load(sys.argv[1])
    docs = list(enumerate(texts))
    mode = sys.argv[3]
    if mode == "tracemalloc":
        tracemalloc.start()
    base = rss_kb("VmRSS")
    wall, cpu = time.perf_counter(), cpu_seconds()
    found = find_near_duplicate_pairs(docs, 0.8)
    clusters = cluster_pairs(found.keys, found.pairs)
    extra = dict(
        clusters=[list(c.members) for c in clusters],
        removed=[key for c in clusters for key in c.duplicates],
        verified=[[p.a, p.b] for p in found.pairs if not p.exact],
        exact=[[p.a, p.b] for p in found.pairs if p.exact],
        candidates=found.candidate_pairs,
        rejected=found.rejected_pairs,
        exact_pairs=found.exact_pairs,
        band_hash_bytes=found.band_hash_bytes,
        params=list(found.params),
    )
    if mode == "tracemalloc":
        extra["tracemalloc_peak_mb"] = tracemalloc.get_traced_memory()[1] / 2**20
    report(sys.argv[2], wall, cpu, base, **extra)
    """
)

_INDEX_MEMORY = _MEASURE + textwrap.dedent(
    """
    import gc, tracemalloc, uuid
    sys.path.insert(0, sys.argv[4])
    from curation.dedup import CompactNearDupIndex, NearDupIndex, compute_signatures

    texts = load(sys.argv[1])
    signatures = compute_signatures(texts)
    result = {}
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    index = NearDupIndex()
    index.insert_many(enumerate(signatures))
    gc.collect()
    result["datasketch_dict_bytes_per_doc"] = (tracemalloc.get_traced_memory()[0] - before) / len(texts)
    del index
    gc.collect()
    before = tracemalloc.get_traced_memory()[0]
    compact = CompactNearDupIndex()
    compact.insert_many(enumerate(signatures))
    compact.query(signatures[0])
    gc.collect()
    result["compact_bytes_per_doc"] = (tracemalloc.get_traced_memory()[0] - before) / len(texts)
    tracemalloc.stop()
    del compact
    redis_url = sys.argv[3]
    if redis_url:
        import redis
        client = redis.Redis.from_url(redis_url)
        try:
            client.ping()
        except redis.RedisError:
            client = None
        if client is not None:
            name = "bench-" + uuid.uuid4().hex
            before = client.info("memory")["used_memory"]
            index = NearDupIndex(redis_url=redis_url, name=name)
            try:
                index.insert_many(enumerate(signatures))
                after = client.info("memory")["used_memory"]
                result["redis_bytes_per_doc"] = (after - before) / len(texts)
            finally:
                index.drop()
    with open(sys.argv[2], "w") as handle:
        json.dump(result, handle)
    """
)

_DATATROVE = _MEASURE + textwrap.dedent(
    """
    import glob, shutil, tempfile
    import numpy as np
    from datatrove.data import Document
    from datatrove.pipeline.dedup.minhash import (
        MinhashConfig, MinhashDedupBuckets, MinhashDedupCluster, MinhashDedupFilter, MinhashDedupSignature,
    )
    from datatrove.utils.hashing import HashConfig

    texts = load(sys.argv[1])
    bands, rows = (int(x) for x in sys.argv[3].split("x"))
    work = tempfile.mkdtemp(prefix="datatrove-bench-")
    config = MinhashConfig(
        hash_config=HashConfig(precision=64), num_buckets=bands, hashes_per_bucket=rows, n_grams=5
    )
    documents = [Document(text=text, id=str(index)) for index, text in enumerate(texts)]
    base = rss_kb("VmRSS")
    wall, cpu = time.perf_counter(), cpu_seconds()
    MinhashDedupSignature(output_folder=f"{work}/sigs", config=config).run(
        iter(documents), rank=0, world_size=1
    )
    buckets = MinhashDedupBuckets(input_folder=f"{work}/sigs", output_folder=f"{work}/buckets", config=config)
    for bucket in range(bands):
        buckets.run(rank=bucket, world_size=bands)
    cluster = MinhashDedupCluster(
        input_folder=f"{work}/buckets", output_folder=f"{work}/remove", config=config, save_cluster_id=True
    )
    cluster.run()
    # The filter stage is part of the job, so it is inside the timing.
    kept = {int(doc.id) for doc in MinhashDedupFilter(input_folder=f"{work}/remove").run(iter(documents))}
    removed = [index for index in range(len(texts)) if index not in kept]
    clusters = {}
    for path in glob.glob(f"{work}/remove/*.clusters"):
        data = np.frombuffer(open(path, "rb").read(), dtype="<u4").reshape(-1, 2)
        for doc, cid in data.tolist():
            clusters.setdefault(cid, []).append(doc)
    report(
        sys.argv[2], wall, cpu, base,
        removed=removed, clusters=[sorted(v) for v in clusters.values() if len(v) > 1],
    )
    shutil.rmtree(work, ignore_errors=True)
    """
)

_TEXTDEDUP = _MEASURE + textwrap.dedent(
    """
    import shutil, tempfile
    from datasets import Dataset, disable_progress_bars, load_from_disk
    import text_dedup.minhash as td

    disable_progress_bars()
    texts = load(sys.argv[1])
    bands, rows = (int(x) for x in sys.argv[3].split("x"))
    work = tempfile.mkdtemp(prefix="textdedup-bench-")
    Dataset.from_dict({"text": texts, "doc": list(range(len(texts)))}).save_to_disk(f"{work}/in")
    base = rss_kb("VmRSS")
    wall, cpu = time.perf_counter(), cpu_seconds()
    # The click command, in-process so that its memory is ours to measure.
    td.main.main(
        args=[
            "--path", f"{work}/in", "--local", "--cache_dir", f"{work}/cache",
            "--output", f"{work}/out", "--column", "text", "--batch_size", "10000",
            "--num_perm", "128", "--ngram", "5", "--min_length", "0",
            "--threshold", "0.8", "--b", str(bands), "--r", str(rows), "--num_proc", "1",
        ],
        standalone_mode=False,
    )
    kept = set(load_from_disk(f"{work}/out")["doc"])
    removed = [i for i in range(len(texts)) if i not in kept]
    clusters = {}
    for index in range(len(texts)):
        clusters.setdefault(td.uf.find(index), []).append(index)
    report(
        sys.argv[2], wall, cpu, base,
        removed=removed, clusters=[v for v in clusters.values() if len(v) > 1],
    )
    shutil.rmtree(work, ignore_errors=True)
    """
)


def run_child(
    python: Path, script: str, corpus_path: Path, *args: str, timeout: int = 3600
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-dedup-") as scratch:
        script_path = Path(scratch) / "child.py"
        script_path.write_text(script)
        result_path = Path(scratch) / "result.json"
        # One core per system, as the "per core" column claims; the variables
        # must be set before the child imports numpy.
        single = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")
        env = dict(
            os.environ, PYTHONHASHSEED="0", TOKENIZERS_PARALLELISM="false", **dict.fromkeys(single, "1")
        )
        done = subprocess.run(
            [str(python), str(script_path), str(corpus_path), str(result_path), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            cwd=scratch,
        )
        if done.returncode or not result_path.exists():
            tail = (done.stderr or done.stdout)[-1500:]
            raise RuntimeError(f"{python.name} child failed ({done.returncode}): {tail}")
        return json.loads(result_path.read_text())


# ---------------------------------------------------------------------------
# Scoring


@dataclass
class Row:
    system: str
    docs: int
    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    precision: float | None
    recall: float | None
    removed: int
    removable: int
    false_removals: int
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def docs_per_cpu_s(self) -> float:
        return self.docs / self.cpu_s if self.cpu_s else float("nan")


def same_cluster_pairs(clusters: Sequence[Sequence[int]]) -> set[tuple[int, int]]:
    pairs = set()
    for members in clusters:
        ordered = sorted(members)
        for position, a in enumerate(ordered):
            for b in ordered[position + 1 :]:
                pairs.add((a, b))
    return pairs


def score(system: str, result: dict[str, Any], truth: Truth, docs: int, note: str = "") -> Row:
    removed = result["removed"]
    precision = recall = None
    if result.get("clusters") is not None:
        predicted = same_cluster_pairs(result["clusters"])
        correct = len(predicted & truth.near_pairs)
        precision = correct / len(predicted) if predicted else 1.0
        recall = correct / len(truth.near_pairs) if truth.near_pairs else 1.0
    false_removals = sum(1 for doc in removed if not truth.has_partner[doc])
    return Row(
        system=system,
        docs=docs,
        wall_s=result["wall_s"],
        cpu_s=result["cpu_s"],
        peak_rss_mb=result["peak_rss_delta_mb"],
        precision=precision,
        recall=recall,
        removed=len(removed),
        removable=truth.removable,
        false_removals=false_removals,
        note=note,
        extra=result,
    )


def verified_pair_scores(result: dict[str, Any], truth: Truth) -> tuple[float, float]:
    """Precision/recall of the pairs our pipeline verified.

    Exact duplicates are reported against the first member of their group and
    only that member goes through LSH; every member has the same shingle set,
    so a verified pair (A, B) stands for all pairs between A's and B's groups.
    """
    group: dict[int, list[int]] = {}
    for first, member in result["exact"]:
        group.setdefault(first, [first]).append(member)
    predicted: set[tuple[int, int]] = set()
    for members in group.values():
        predicted |= same_cluster_pairs([members])
    for a, b in result["verified"]:
        for x in group.get(a, [a]):
            for y in group.get(b, [b]):
                predicted.add((min(x, y), max(x, y)))
    correct = len(predicted & truth.near_pairs)
    return (
        correct / len(predicted) if predicted else 1.0,
        correct / len(truth.near_pairs) if truth.near_pairs else 1.0,
    )


# ---------------------------------------------------------------------------
# Report


def fmt(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def table(rows: Sequence[Row]) -> str:
    header = (
        "| system | docs/s per core | wall s | peak RSS Δ MB | same-cluster pair P | pair R (J≥0.8) "
        "| removed / truly removable | wrongly removed | notes |"
    )
    lines = [header, "|" + "---|" * 9]
    for row in rows:
        lines.append(
            f"| {row.system} | {row.docs_per_cpu_s:,.0f} | {row.wall_s:.1f} | {row.peak_rss_mb:,.0f} "
            f"| {fmt(row.precision)} | {fmt(row.recall)} | {row.removed:,} / {row.removable:,} "
            f"| {row.false_removals:,} | {row.note} |"
        )
    return "\n".join(lines)


def write_docs(markdown: str) -> Path:
    path = REPO / "docs" / "benchmarks.md"
    existing = path.read_text() if path.exists() else "# Benchmarks\n"
    start = existing.find(DOCS_SECTION)
    if start == -1:
        updated = existing.rstrip("\n") + "\n\n" + markdown.rstrip("\n") + "\n"
    else:
        # Our section ends where the next level-2 heading starts.
        end = existing.find("\n## ", start + len(DOCS_SECTION))
        tail = "" if end == -1 else existing[end:]
        updated = existing[:start] + markdown.rstrip("\n") + "\n" + tail
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(updated)
    return path


# ---------------------------------------------------------------------------
# Main


def run_corpus(corpus: Corpus, peers: set[str], scratch: Path) -> tuple[list[Row], Truth, list[str]]:
    corpus_path = scratch / f"{abs(hash(corpus.name))}.jsonl"
    with corpus_path.open("w") as handle:
        for text in corpus.texts:
            handle.write(json.dumps({"text": text}) + "\n")
    truth = ground_truth(corpus.texts)
    docs = len(corpus.texts)
    notes: list[str] = []
    rows: list[Row] = []
    python = Path(sys.executable)

    ours = run_child(python, _OURS, corpus_path, "timed", str(REPO))
    traced = run_child(python, _OURS, corpus_path, "tracemalloc", str(REPO))
    precision, recall = verified_pair_scores(ours, truth)
    bands, rows_per_band = ours["params"]
    row = score(
        "flywheel curation.dedup",
        ours,
        truth,
        docs,
        note=f"{bands}x{rows_per_band}, exact verification; verified-pair P/R {precision:.4f}/{recall:.4f}",
    )
    row.extra["tracemalloc_peak_mb"] = traced["tracemalloc_peak_mb"]
    rows.append(row)
    notes.append(
        f"ours: {ours['candidates']:,} LSH candidate pairs, {ours['rejected']:,} rejected by exact "
        f"verification, {ours['exact_pairs']:,} exact-duplicate pairs; band-hash index "
        f"{ours['band_hash_bytes'] / docs:,.0f} B/doc; "
        f"tracemalloc peak {traced['tracemalloc_peak_mb']:,.0f} MB"
    )

    for peer, python_path, script, label in (
        ("datatrove", DATATROVE_PYTHON, _DATATROVE, "datatrove 0.10.1 MinHash stages"),
        ("textdedup", TEXTDEDUP_PYTHON, _TEXTDEDUP, "text-dedup 0.4.0 minhash"),
    ):
        if peer not in peers:
            continue
        if not python_path.exists():
            notes.append(f"{label}: not run, no virtualenv at {python_path.parent.parent}")
            continue
        # datatrove defaults to 14x8; text-dedup uses datasketch's optimiser (9x13 here).
        default = "14x8" if peer == "datatrove" else "9x13"
        for params, why in ((default, "its default banding"), (f"{bands}x{rows_per_band}", "our banding")):
            try:
                result = run_child(python_path, script, corpus_path, params)
            except (RuntimeError, subprocess.TimeoutExpired) as error:
                notes.append(f"{label} ({params}): failed: {str(error)[:300]}")
                continue
            rows.append(score(f"{label} ({params})", result, truth, docs, note=f"{why}, no verification"))
    return rows, truth, notes


def index_memory(corpus: Corpus, scratch: Path, redis_url: str) -> dict[str, float]:
    corpus_path = scratch / "index-memory.jsonl"
    with corpus_path.open("w") as handle:
        for text in corpus.texts:
            handle.write(json.dumps({"text": text}) + "\n")
    return run_child(Path(sys.executable), _INDEX_MEMORY, corpus_path, redis_url, str(REPO))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--docs", type=int, default=20_000, help="generated corpus size (default 20000)")
    parser.add_argument("--quick", action="store_true", help="3,000 generated docs, no peers")
    parser.add_argument("--peers", default="datatrove,textdedup", help="comma list, or 'none'")
    parser.add_argument("--seed", type=int, default=20260101)
    parser.add_argument("--index-docs", type=int, default=5_000, help="docs for the index memory probe")
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15"))
    parser.add_argument("--write-docs", action="store_true", help="replace our section of docs/benchmarks.md")
    args = parser.parse_args(argv)
    docs = 3_000 if args.quick else args.docs
    peers = set() if args.quick or args.peers == "none" else set(args.peers.split(","))

    load_before = os.getloadavg()[0]
    sections: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-dedup-") as scratch_name:
        scratch = Path(scratch_name)
        for corpus in (generated_corpus(docs, args.seed), real_corpus()):
            rows, truth, notes = run_corpus(corpus, peers, scratch)
            title = f"### {corpus.name}"
            body = [
                title,
                "",
                f"{corpus.notes}. Ground truth: {len(truth.near_pairs):,} pairs at J≥0.8 among "
                f"{len(truth.pairs):,} pairs sharing a shingle ({truth.seconds:.1f} s).",
                "",
                table(rows),
                "",
                *[f"- {note}" for note in notes],
            ]
            if corpus.planted:
                order = sorted(
                    corpus.planted,
                    key=lambda k: (k == "exact", 0.0 if k == "exact" else float(k.rstrip("%"))),
                )
                planted = ", ".join(f"{k}: {corpus.planted[k]}" for k in order)
                body.append(f"- planted copies by edit rate: {planted}")
            section = "\n".join(body)
            print(section, "\n", flush=True)
            sections.append(section)
        probe = generated_corpus(args.index_docs, args.seed + 1)
        memory = index_memory(probe, scratch, args.redis_url)

    load_after = os.getloadavg()[0]
    # Other work on the machine slows every system alike but inflates wall
    # time; the load average says how much to trust the absolute numbers.
    print(f"1-minute load average: {load_before:.1f} at start, {load_after:.1f} at end\n")
    bands, rows_per_band = choose_lsh_params(128, THRESHOLD)
    memory_lines = [
        "### Index memory per document",
        "",
        f"- batch path (numpy band hashes, {bands} x uint64): {bands * 8} B/doc, plus 8 B per shingle "
        "for the verification fingerprints while a batch runs",
        f"- `NearDupIndex` in memory (datasketch `MinHashLSH`, dict storage): "
        f"{memory['datasketch_dict_bytes_per_doc']:,.0f} B/doc ({args.index_docs:,} docs, tracemalloc)",
    ]
    memory_lines.append(
        f"- `CompactNearDupIndex` (sorted numpy band hashes): {memory['compact_bytes_per_doc']:,.0f} B/doc "
        "(same docs, tracemalloc; keys are ints)"
    )
    if "redis_bytes_per_doc" in memory:
        memory_lines.append(
            f"- `NearDupIndex` in Redis (datasketch layout): {memory['redis_bytes_per_doc']:,.0f} B/doc "
            "(`INFO memory` delta)"
        )
    sections.append("\n".join(memory_lines))
    print("\n".join(memory_lines), "\n")

    if args.write_docs:
        command = "python bench/dedup.py " + " ".join(argv if argv is not None else sys.argv[1:])
        header = "\n".join(
            [
                DOCS_SECTION,
                "",
                f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
                f"Python {platform.python_version()}; every system single-threaded "
                "(`OMP_NUM_THREADS=1`, one process). Threshold J≥0.8 on 5-word shingles. "
                f"Chosen LSH banding {bands}x{rows_per_band}: P(candidate | J=0.8) = "
                f"{lsh_candidate_probability(0.8, bands, rows_per_band):.3f}; datatrove's default 14x8 "
                f"gives {lsh_candidate_probability(0.8, 14, 8):.3f}, datasketch's optimiser 9x13 "
                f"{lsh_candidate_probability(0.8, 9, 13):.3f}. 1-minute load average "
                f"{load_before:.1f} at start, {load_after:.1f} at end (other jobs shared the machine "
                "when above the core count).",
                "",
                "Commands (peers in their own virtualenvs outside the repository, see bench/README.md):",
                "",
                "```sh",
                f"python3.11 -m venv {DATATROVE_PYTHON.parent.parent}",
                f'{DATATROVE_PYTHON.parent}/pip install "datatrove[processing]==0.10.1" spacy',
                f"python3.11 -m venv {TEXTDEDUP_PYTHON.parent.parent}",
                f'{TEXTDEDUP_PYTHON.parent}/pip install "text-dedup==0.4.0"  # 0.4.1 is not on PyPI',
                f".venv/bin/{command.strip()}",
                "```",
                "",
            ]
        )
        path = write_docs(header + "\n" + "\n\n".join(sections))
        print(f"wrote {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
