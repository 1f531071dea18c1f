from __future__ import annotations

import argparse
import logging
import math
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from training.models import RewardGateRule
from workers import simulation
from workers.models import SelectionPolicy


def _pct(value: float | None) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.1%}"


class Command(BaseCommand):
    help = (
        "Simulate the flywheel: simulated annotators judge through the real services, then curate, "
        "retrain and gate a tiny reward model, generate candidates and select pairs, round after round."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        defaults = simulation.SimulationConfig()
        parser.add_argument(
            "--selection",
            choices=[*SelectionPolicy.values, simulation.ORACLE],
            default=defaults.selection,
            help=f"a project policy, or {simulation.ORACLE}: knows the hidden truth (simulation only)",
        )
        parser.add_argument(
            "--compare", action="store_true", help="run random and uncertainty on the same budget and seeds"
        )
        parser.add_argument("--rounds", type=int, default=defaults.rounds)
        parser.add_argument("--budget", type=int, default=defaults.budget, help="judgments per round")
        parser.add_argument("--seed", type=int, default=defaults.seed, help="the first seed")
        parser.add_argument("--seeds", type=int, default=1, help="how many seeds per policy")
        parser.add_argument("--prompts", type=int, default=defaults.pool_prompts, help="prompts in the pool")
        parser.add_argument("--best-of-n", type=int, default=defaults.best_of_n)
        parser.add_argument("--candidates-per-round", type=int, default=defaults.candidates_per_round)
        parser.add_argument("--careful", type=int, default=defaults.careful)
        parser.add_argument("--careless-left", type=int, default=defaults.careless_left)
        parser.add_argument("--careless-random", type=int, default=defaults.careless_random)
        parser.add_argument("--temperature", type=float, default=defaults.temperature)
        parser.add_argument("--epochs", type=float, default=defaults.reward_config["epochs"])
        parser.add_argument(
            "--reward-base",
            choices=simulation.REWARD_BASES,
            default="tiny",
            help="the tiny encoder built for the simulation, or the product's all-MiniLM-L6-v2",
        )
        parser.add_argument(
            "--lr", type=float, default=None, help="the reward model's learning rate (default: the base's)"
        )
        parser.add_argument(
            "--explore",
            type=float,
            default=defaults.explore,
            help="under uncertainty, the share of each round's tasks drawn at random",
        )
        parser.add_argument(
            "--policy-validation",
            action="store_true",
            help="ablation: validation prompts' pairs chosen by the policy too, not at random",
        )
        parser.add_argument(
            "--warm-start", action="store_true", help="train each round from the deployed reward model"
        )
        parser.add_argument(
            "--gate-rule", choices=RewardGateRule.values, default=None, help="the reward gate's rule"
        )
        parser.add_argument(
            "--gate-margin",
            type=float,
            default=None,
            help="the margin rule's accuracy points over the deployed model (default: the project's)",
        )
        parser.add_argument(
            "--gate-gold",
            action=argparse.BooleanOptionalAction,
            default=None,
            help="judge reward models on the gold pairs too (default: the project's, on)",
        )
        parser.add_argument("--plot", type=Path, default=None, help="write the accuracy plot (PNG) here")
        parser.add_argument("--json", type=Path, default=None, help="write every round's record here")
        parser.add_argument(
            "--records",
            type=Path,
            action="append",
            default=[],
            help="summarise and plot records written by --json (repeatable) instead of running",
        )
        parser.add_argument(
            "--encoder",
            type=Path,
            default=None,
            help="the tiny encoder folder (built there if missing); default: DATA_DIR/simulation/encoder",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        # Every round loads fresh tiny models; their load reports would bury the table.
        logging.getLogger("transformers").setLevel(logging.ERROR)
        if options["records"]:
            loaded = [r for path in options["records"] for r in simulation.results_load(path)]
            self._summary(loaded, sorted({r.config.selection for r in loaded}))
            if options["plot"]:
                self.stdout.write(f"\nPlot: {simulation.plot(loaded, options['plot'])}")
            return
        if options["rounds"] < 1 or options["budget"] < 1 or options["seeds"] < 1:
            raise CommandError("--rounds, --budget and --seeds must be at least 1")
        if not 0 <= options["explore"] <= 1:
            raise CommandError("--explore must be between 0 and 1")
        reward_config = (
            simulation.MINILM_REWARD_CONFIG
            if options["reward_base"] == "minilm"
            else simulation.REWARD_CONFIG
        )
        base = simulation.SimulationConfig(
            rounds=options["rounds"],
            budget=options["budget"],
            pool_prompts=options["prompts"],
            best_of_n=options["best_of_n"],
            candidates_per_round=options["candidates_per_round"],
            careful=options["careful"],
            careless_left=options["careless_left"],
            careless_random=options["careless_random"],
            temperature=options["temperature"],
            warm_start=options["warm_start"],
            gate_rule=options["gate_rule"],
            gate_margin=options["gate_margin"],
            gate_gold=options["gate_gold"],
            explore=options["explore"],
            random_validation=not options["policy_validation"],
            reward_config={
                **reward_config,
                "epochs": options["epochs"],
                "lr": options["lr"] if options["lr"] is not None else reward_config["lr"],
            },
            reward_base=options["reward_base"],
        )
        if options["encoder"] is not None and options["reward_base"] != "tiny":
            raise CommandError(
                "--encoder names the tiny encoder's folder; leave it out with --reward-base minilm"
            )
        encoder_dir = options["encoder"] or Path(settings.DATA_DIR) / "simulation" / "encoder"
        encoder = simulation.reward_base_path(options["reward_base"], encoder_dir)
        self.stdout.write(f"Reward base ({options['reward_base']}): {encoder}, lr {base.reward_config['lr']}")
        policies = ["random", "uncertainty"] if options["compare"] else [options["selection"]]
        seeds = range(options["seed"], options["seed"] + options["seeds"])
        results: list[simulation.SimulationResult] = []
        for seed in seeds:
            for policy in policies:
                config = simulation.with_selection(base, policy, seed)
                self.stdout.write(f"\n## {policy}, seed {seed}\n")
                self._header()
                result = simulation.run_simulation(config, encoder=encoder, progress=self._row)
                results.append(result)
                self._annotators(result)
        self._summary(results, policies)
        if options["plot"]:
            path = simulation.plot(results, options["plot"])
            self.stdout.write(f"\nPlot: {path}")
        if options["json"]:
            self.stdout.write(f"Records: {simulation.results_dump(results, options['json'])}")

    def _header(self) -> None:
        self.stdout.write(
            "| round | judgments | pairs in snapshot | version | gate | acc. new | acc. deployed | "
            "candidate quality | responses kept | removed (by reason) | promoted / rejected | "
            "trust careful (min) | trust careless | flagged | s |"
        )
        self.stdout.write("|" + "---|" * 15)

    def _row(self, record: simulation.RoundRecord) -> None:
        careless = {n: t for n, t in record.trust.items() if not n.startswith("careful")}
        careful = [t for n, t in record.trust.items() if n.startswith("careful")]
        removed = ", ".join(f"{k} {v}" for k, v in sorted(record.curation_removed.items())) or "none"
        self.stdout.write(
            f"| {record.round} | {record.judgments} | {record.preference_pairs} | v{record.version} | "
            f"{'promoted' if record.promoted else 'rejected'} | {_pct(record.accuracy_trained)} | "
            f"{_pct(record.accuracy_deployed)} (v{record.deployed_version or '-'}) | "
            f"{record.candidate_quality:+.2f} | {record.curation_kept} | {removed} | "
            f"{record.promotions} / {record.rejections} | {min(careful):.2f} | "
            + ", ".join(f"{n} {t:.2f}" for n, t in careless.items())
            + f" | {', '.join(record.flagged) or 'none'} | {record.seconds:.0f} |"
        )

    def _annotators(self, result: simulation.SimulationResult) -> None:
        self.stdout.write(
            "\n| annotator | kind | judgments | trust | flagged | gold acc. | agreement | median s "
            "| left share |"
        )
        self.stdout.write("|" + "---|" * 9)
        for a in sorted(result.annotators, key=lambda a: a.trust):
            median = f"{a.median_seconds:.1f}" if a.median_seconds is not None else "—"
            self.stdout.write(
                f"| {a.name} | {a.kind} | {a.judgments} | {a.trust:.2f} | {'yes' if a.flagged else 'no'} | "
                f"{_pct(a.gold_accuracy)} | {_pct(a.agreement)} | {median} | {_pct(a.left_share)} |"
            )

    def _summary(self, results: list[simulation.SimulationResult], policies: list[str]) -> None:
        curves = {
            policy: simulation.mean_curve([r for r in results if r.config.selection == policy])
            for policy in policies
        }
        self.stdout.write("\n## Mean over seeds (deployed model, hidden-preference accuracy)\n")
        columns = " | ".join(f"{p}: judgments | {p}: accuracy" for p in policies)
        self.stdout.write(f"| round | {columns} |")
        self.stdout.write("|---|" + "---|---|" * len(policies))
        for i in range(min(len(c.accuracy) for c in curves.values())):
            cells = " | ".join(
                f"{curves[p].judgments[i]:.0f} | {curves[p].accuracy[i]:.1%}" for p in policies
            )
            self.stdout.write(f"| {i + 1} | {cells} |")
        self.stdout.write(
            "\n## What selection bought (mean over seeds)\n\n"
            "| policy | hidden gap of queued pairs | queued pairs with no right answer "
            "| full tasks with a winner (last round) | winners right (last round) |\n|---|---|---|---|---|"
        )
        for policy in policies:
            group = [r for r in results if r.config.selection == policy]
            queued = [x for r in group for x in r.rounds if not math.isnan(x.queued_gap)]
            last = [r.rounds[-1] for r in group if not math.isnan(r.rounds[-1].labels_right)]
            self.stdout.write(
                f"| {policy} | "
                + (f"{sum(x.queued_gap for x in queued) / len(queued):.2f}" if queued else "—")
                + f" | {_pct(sum(x.queued_equal for x in queued) / len(queued) if queued else None)}"
                + f" | {_pct(sum(x.labels_decided for x in last) / len(last) if last else None)}"
                + f" | {_pct(sum(x.labels_right for x in last) / len(last) if last else None)} |"
            )
        if "random" in curves and "uncertainty" in curves:
            by_policy = {
                policy: [r for r in results if r.config.selection == policy]
                for policy in ("random", "uncertainty")
            }
            for metric in ("accuracy_deployed", "accuracy_trained"):
                outcome = simulation.compare(
                    simulation.mean_curve(by_policy["random"], metric=metric),
                    simulation.mean_curve(by_policy["uncertainty"], metric=metric),
                )
                reached = (
                    f"uncertainty reaches it at {outcome.uncertainty_judgments:.0f} judgments "
                    f"(saving {_pct(outcome.saving)}; interpolated {outcome.uncertainty_interpolated:.0f}, "
                    f"saving {_pct(outcome.saving_interpolated)})"
                    if outcome.uncertainty_judgments is not None
                    else "uncertainty never reaches it"
                )
                self.stdout.write(
                    f"\n{metric}: random ends at {outcome.target:.1%} after {outcome.random_judgments:.0f} "
                    f"judgments; {reached}. Target (saving ≥ 30%): "
                    f"{'met' if (outcome.saving or 0) >= 0.3 else 'missed'}."
                )
