"""Random against uncertainty, from flywheel_simulate --json records: the tables of docs/flywheel.md.

    .venv/bin/python scripts/simulation_table.py docs/simulation-records/session6/s6-minilm-*-[0-9].json
    .venv/bin/python scripts/simulation_table.py --against oracle random-*.json oracle-*.json

`--against POLICY` sets the policy held against random (default uncertainty); `--rounds N` cuts
every run at round N (rounds 1–N of a longer run are the same computation as an N-round run).

Mean ± standard error over seeds per round (deployed model and each round's new version), the
judgments uncertainty needs to reach random's mean accuracy at each round (interpolated between
rounds, as `workers.simulation.judgments_to_reach`), the paired difference at the end, and one
row per seed. Only seeds with a record for both policies count, so every comparison is paired.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flywheel.settings")

import django

django.setup()

from workers.simulation import (  # noqa: E402
    Curve,
    RoundRecord,
    SimulationResult,
    judgments_to_reach,
    mean_curve,
    results_load,
)

POLICIES = ["random", "uncertainty"]
METRICS = (("accuracy_deployed", "deployed"), ("accuracy_trained", "new versions"))


def mean_se(values: list[float]) -> tuple[float, float]:
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, math.nan
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1) / n)


def pct(values: list[float]) -> str:
    mean, se = mean_se(values)
    return f"{mean:.1%} ± {se * 100:.1f}" if not math.isnan(se) else f"{mean:.1%}"


def reach(curve: Curve, target: float, spent: float) -> str:
    _, interpolated = judgments_to_reach(curve, target)
    if interpolated is None:
        return "never"
    return f"{interpolated:,.0f} ({1 - interpolated / spent:.0%})".replace("-", "−")


def main(paths: list[str], *, cut: int | None = None) -> None:
    results: dict[str, dict[int, SimulationResult]] = {p: {} for p in POLICIES}
    for path in paths:
        for result in results_load(Path(path)):
            if result.config.selection in results:
                if cut is not None:
                    result = dataclasses.replace(result, rounds=result.rounds[:cut])
                results[result.config.selection][result.config.seed] = result
    other = POLICIES[1]
    seeds = sorted(set(results["random"]) & set(results[other]))
    if not seeds:
        raise SystemExit("no seed has records for both policies")
    runs: dict[str, dict[int, list[RoundRecord]]] = {
        p: {s: results[p][s].rounds for s in seeds} for p in POLICIES
    }
    rounds = min(len(runs[p][s]) for p in POLICIES for s in seeds)
    print(f"Seeds {seeds} ({len(seeds)}), {rounds} rounds\n")

    def column(policy: str, metric: str, i: int) -> list[float]:
        return [getattr(runs[policy][s][i], metric) for s in seeds]

    curves = {
        (p, m): mean_curve([results[p][s] for s in seeds], metric=m) for p in POLICIES for m, _ in METRICS
    }
    print(
        f"| round | judgments | deployed: random | deployed: {other} | reaches (deployed) "
        f"| new version: random | new version: {other} | reaches (new versions) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for i in range(rounds):
        spent = curves[("random", "accuracy_deployed")].judgments[i]
        cells = [f"{i + 1}", f"{spent:,.0f}"]
        for metric, _ in METRICS:
            target = curves[("random", metric)].accuracy[i]
            cells += [
                pct(column("random", metric, i)),
                pct(column(other, metric, i)),
                reach(curves[(other, metric)], target, spent),
            ]
        print("| " + " | ".join(cells) + " |")

    last = rounds - 1
    print()
    for metric, name in METRICS:
        diffs = [
            getattr(runs[other][s][last], metric) - getattr(runs["random"][s][last], metric) for s in seeds
        ]
        mean, se = mean_se(diffs)
        target = curves[("random", metric)].accuracy[last]
        spent = curves[("random", metric)].judgments[last]
        reached = reach(curves[(other, metric)], target, spent)
        low, high, share = bootstrap_saving(results, seeds, metric)
        print(
            f"{name}: random's final {target:.1%}; {other} "
            + (
                "never reaches it"
                if reached == "never"
                else f"reaches it at {reached} judgments interpolated"
            )
            + f"; paired difference at the end ({other} − random) "
            + f"{mean * 100:+.1f} ± {se * 100:.1f} points"
            + f"; saving, 95% bootstrap interval over seeds {low:.0%} to {high:.0%}"
            + f", at least 30% in {share:.0%} of resamples"
        )

    print(
        f"\n| seed | deployed: random r1 → r{rounds} | deployed: {other} r1 → r{rounds} "
        f"| new version r{rounds}: random | new version r{rounds}: {other} "
        f"| {other} reaches this seed's random final (deployed) |"
    )
    print("|---|---|---|---|---|---|")
    for s in seeds:
        r, u = runs["random"][s], runs[other][s]
        own = mean_curve([results[other][s]])
        at_round, _ = judgments_to_reach(own, r[last].accuracy_deployed)
        print(
            f"| {s} | {r[0].accuracy_deployed:.1%} → {r[last].accuracy_deployed:.1%} "
            f"| {u[0].accuracy_deployed:.1%} → {u[last].accuracy_deployed:.1%} "
            f"| {r[last].accuracy_trained:.1%} | {u[last].accuracy_trained:.1%} "
            f"| {f'{at_round:,.0f}' if at_round is not None else 'never'} |"
        )
    print(
        "\n| policy | hidden gap of queued pairs | queued pairs with equal hidden scores "
        "| promoted | rejected (better by more than a point) | best version of the run minus final deployed |"
    )
    print("|---|---|---|---|---|---|")
    for p in POLICIES:
        rows = [x for s in seeds for x in runs[p][s][:rounds]]
        queued = [x for x in rows if not math.isnan(x.queued_gap)]
        rejected = [x for x in rows if not x.promoted and not math.isnan(x.accuracy_trained)]
        better = sum(x.accuracy_trained > x.accuracy_deployed + 0.01 for x in rejected)
        best = [
            max(x.accuracy_trained for x in runs[p][s][:rounds]) - runs[p][s][last].accuracy_deployed
            for s in seeds
        ]
        print(
            f"| {p} | {sum(x.queued_gap for x in queued) / len(queued):.2f} "
            f"| {sum(x.queued_equal for x in queued) / len(queued):.1%} "
            f"| {sum(x.promoted for x in rows)} | {len(rejected)} ({better}) "
            f"| {sum(best) / len(best) * 100:.1f} points |"
        )
    seconds = {p: [sum(x.seconds for x in runs[p][s][:rounds]) for s in seeds] for p in POLICIES}
    print("\nSeconds per run (rounds only): " + ", ".join(f"{p} {pct_free(seconds[p])}" for p in POLICIES))


def saving(results: dict[str, dict[int, SimulationResult]], seeds: list[int], metric: str) -> float:
    """The share of random's budget the other policy saves reaching random's final mean accuracy
    on these seeds (0 when it never does: no saving, as "never" in the table)."""
    random_curve = mean_curve([results["random"][s] for s in seeds], metric=metric)
    other_curve = mean_curve([results[POLICIES[1]][s] for s in seeds], metric=metric)
    _, reached = judgments_to_reach(other_curve, random_curve.accuracy[-1])
    spent = random_curve.judgments[-1]
    return 1 - (reached if reached is not None else spent) / spent


def bootstrap_saving(
    results: dict[str, dict[int, SimulationResult]], seeds: list[int], metric: str, draws: int = 2000
) -> tuple[float, float, float]:
    """A 95% percentile interval of `saving` over seeds drawn with replacement (both policies'
    runs of a seed drawn together, so the comparison stays paired), and the share of draws at
    30% or more."""
    rng = random.Random(0)
    values = sorted(saving(results, [rng.choice(seeds) for _ in seeds], metric) for _ in range(draws))
    return values[int(0.025 * draws)], values[int(0.975 * draws) - 1], sum(v >= 0.30 for v in values) / draws


def pct_free(values: list[float]) -> str:
    return f"mean {sum(values) / len(values):.0f}, min {min(values):.0f}, max {max(values):.0f}"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Random against another policy, from --json records.")
    parser.add_argument("--against", default=POLICIES[1], help="the policy held against random")
    parser.add_argument("--rounds", type=int, default=None, help="cut every run at this round")
    parser.add_argument("records", nargs="+")
    options = parser.parse_args()
    POLICIES[1] = options.against
    main(options.records, cut=options.rounds)
