"""``robert sim sweep``: the same town over adoption rates, risk thresholds, test delays and
seeds, in parallel processes, summarised in one table with confidence intervals.

Every run is one ``robert sim`` run with the app (its report kept in ``OUT/runs/NAME``); every
seed and test delay also gets one run without the app, the baseline its runs are compared with
(the same seed gives the same town, the same people infected at the start, the same draws).
Runs already done are not done again, so a sweep can be resumed, or its table and plots
rebuilt, by running the same command.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import shutil
import sys
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from client_sim.measures import mean_ci
from client_sim.progress import Progress
from client_sim.sim import Run, SimConfig, simulate


@dataclass(frozen=True, slots=True)
class Task:
    """One run of a sweep."""

    name: str
    config: SimConfig
    with_app: bool


@dataclass(frozen=True, slots=True)
class SweepConfig:
    """The grid: every combination of these, for every seed."""

    base: SimConfig
    adoptions: tuple[float, ...] = (0.2, 0.4, 0.6, 0.8)
    thresholds: tuple[float, ...] = (0.05, 0.1, 0.2)
    test_delays: tuple[tuple[float, float], ...] = ((5.0, 9.0),)
    seeds: tuple[int, ...] = (1, 2, 3)
    workers: int = 2


def delay_name(delay: tuple[float, float]) -> str:
    """``5-9`` for (5.0, 9.0)."""
    return "-".join(f"{d:g}" for d in delay)


def tasks(sweep: SweepConfig) -> list[Task]:
    """The baselines first (they are quick), then the runs with the app: the default risk
    threshold first, seed by seed, the larger adoptions first."""
    runs = sweep.base.out / "runs"
    base = replace(sweep.base, baseline=False, quiet=True, count_hellos=False, dummy_days=0.0)
    todo: list[Task] = []
    for delay in sweep.test_delays:
        for seed in sweep.seeds:
            epidemic = replace(base.epidemic, test_delay_days=delay)
            name = f"noapp_d{delay_name(delay)}_s{seed}"
            config = replace(base, seed=seed, epidemic=epidemic, adoption=0.0, out=runs / name)
            todo.append(Task(name, config, False))
    # The default threshold first, seed by seed, then the others: a sweep cut short still has
    # whole curves over adoption, with every seed at the default threshold.
    default = SimConfig().risk_threshold
    for threshold in sorted(sweep.thresholds, key=lambda t: (abs(t - default), t)):
        for seed in sweep.seeds:
            for adoption in sorted(sweep.adoptions, reverse=True):
                for delay in sweep.test_delays:
                    name = f"a{adoption:g}_t{threshold:g}_d{delay_name(delay)}_s{seed}"
                    config = replace(
                        base,
                        seed=seed,
                        adoption=adoption,
                        risk_threshold=threshold,
                        epidemic=replace(base.epidemic, test_delay_days=delay),
                        out=runs / name,
                    )
                    todo.append(Task(name, config, True))
    return todo


def run_task(task: Task) -> str:
    """Run one task in this process; its report goes to ``OUT/runs/NAME/report.json`` (no
    plot: the sweep draws its own)."""
    out = task.config.out
    out.mkdir(parents=True, exist_ok=True)
    if task.with_app:
        report = asyncio.run(simulate(task.config))
    else:
        report = asyncio.run(baseline_report(task.config))
    shutil.rmtree(out / "server", ignore_errors=True)
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return task.name


async def baseline_report(config: SimConfig) -> dict[str, Any]:
    """The run without the app alone (what a sweep compares its runs with)."""
    began = time.perf_counter()
    run = Run(config, False, Progress(enabled=False))
    await run.run()
    measures = run.epidemic_measures()
    curve = [
        {"day": s.day, "new_infections": s.new_infections, "infected_total": s.infected_total,
         "isolated": s.isolated, "positives": s.positives}
        for s in run.curve
    ]  # fmt: skip
    return {
        "phones": config.phones,
        "days": config.days,
        "seed": config.seed,
        "adoption": 0.0,
        "scenario": config.scenario,
        "beta": config.epidemic.beta,
        "test_share": config.epidemic.test_share,
        "test_delay_days": list(config.epidemic.test_delay_days),
        "adherence": config.epidemic.adherence,
        "infected_without_app": measures["infected"],
        "epidemic_without_app": measures,
        "curve_without_app": curve,
        "timing": {"wall_seconds": round(time.perf_counter() - began, 2)},
    }


def done(task: Task) -> bool:
    """Whether the task's report is already there."""
    return (task.config.out / "report.json").exists()


def run_sweep(sweep: SweepConfig, progress: Progress, log: Any = sys.stderr) -> list[str]:
    """Run what is not done yet, ``workers`` processes at a time; the names of the runs done.

    The progress bar counts runs; a line per finished run goes to ``log`` when the bar is off
    (a sweep in the background writes its progress to a file)."""
    todo = [t for t in tasks(sweep) if not done(t)]
    progress.stage(f"sweep {len(todo)} runs", len(todo))
    began = time.perf_counter()
    finished: list[str] = []
    if not todo:
        return finished
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=max(1, sweep.workers), mp_context=context) as pool:
        running: set[Future[str]] = {pool.submit(run_task, t) for t in todo}
        while running:
            complete, running = wait(running, return_when=FIRST_COMPLETED)
            for future in complete:
                name = future.result()
                finished.append(name)
                progress.advance(1)
                if not progress.enabled:
                    elapsed = time.perf_counter() - began
                    left = elapsed / len(finished) * (len(todo) - len(finished))
                    print(
                        f"{len(finished)}/{len(todo)} {name} after {elapsed:.0f} s "
                        f"(about {left:.0f} s left)",
                        file=log,
                        flush=True,
                    )
    return finished


# --- the table ---------------------------------------------------------------------------------
METRICS = (
    ("infected", "people infected by the end (with the app)"),
    ("infected_without_app", "people infected by the end, same seeds without the app"),
    ("averted", "infections averted (without minus with the app, seed by seed)"),
    ("averted_share", "share of the infections averted"),
    ("r_effective", "reproduction number with the app (counted on the infection tree)"),
    ("r_effective_without_app", "reproduction number without the app"),
    ("r_lowered", "reproduction number lowered by the app (without minus with, seed by seed)"),
    ("warned", "people warned by the app"),
    ("warned_true_close", "warned people who really were close contacts (15 min within 1 m)"),
    ("isolated_needlessly", "warned people who stayed home without being infected"),
    ("contact_to_warning_days", "median days from the last contact to the warning"),
    ("traced_share", "share of infections traced through the app"),
    ("reports", "positive people who reported through the app"),
    ("recall", "true close contacts with the app who were warned (recall)"),
    ("precision", "warned people who were true close contacts (precision)"),
)


SIGNED = frozenset({"averted", "averted_share", "r_lowered"})
"""Metrics that can be negative (the others' intervals stop at 0)."""


def load_reports(out: Path) -> list[dict[str, Any]]:
    """Every run report of a sweep directory."""
    return [json.loads(p.read_text()) for p in sorted((out / "runs").glob("*/report.json"))]


def summarise(reports: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (adoption, threshold, test delay): each metric's mean and 95 % interval over
    the seeds, infections averted computed seed by seed against the same seed's baseline."""
    baselines = {
        (r["seed"], tuple(r["test_delay_days"])): r for r in reports if r["adoption"] == 0.0
    }
    groups: dict[tuple[float, float, tuple[float, ...]], list[dict[str, Any]]] = {}
    for r in reports:
        if r["adoption"] == 0.0:
            continue
        key = (r["adoption"], r["risk_threshold"], tuple(r["test_delay_days"]))
        groups.setdefault(key, []).append(r)
    rows = []
    for (adoption, threshold, delay), runs in sorted(groups.items()):
        values: dict[str, list[Any]] = {m: [] for m, _ in METRICS}
        for r in runs:
            base = baselines.get((r["seed"], delay))
            without = base["infected_without_app"] if base else None
            values["infected"].append(r["infected_with_app"])
            values["infected_without_app"].append(without)
            averted = None if without is None else without - r["infected_with_app"]
            values["averted"].append(averted)
            values["averted_share"].append(None if averted is None else averted / without)
            values["r_effective"].append(r["epidemic_with_app"]["r_effective"])
            values["r_effective_without_app"].append(
                base["epidemic_without_app"]["r_effective"] if base else None
            )
            r_with = r["epidemic_with_app"]["r_effective"]
            r_without = base["epidemic_without_app"]["r_effective"] if base else None
            values["r_lowered"].append(
                None if r_with is None or r_without is None else r_without - r_with
            )
            values["warned"].append(r["warned"])
            values["warned_true_close"].append(r["warned_true_close"])
            values["isolated_needlessly"].append(r["isolated_needlessly"])
            values["contact_to_warning_days"].append(r["contact_to_warning_days_median"])
            values["traced_share"].append(r["traced_share"])
            values["reports"].append(r["reports"])
            values["recall"].append(r["recall"])
            values["precision"].append(r["precision"])
        row: dict[str, Any] = {
            "adoption": adoption,
            "risk_threshold": threshold,
            "test_delay_days": list(delay),
            "seeds": sorted(r["seed"] for r in runs),
            "phones": runs[0]["phones"],
            "days": runs[0]["days"],
        }
        for metric, _ in METRICS:
            row[metric] = mean_ci(values[metric], None if metric in SIGNED else 0.0)
        rows.append(row)
    return rows


def write_table(rows: list[dict[str, Any]], out: Path) -> None:
    """OUT/sweep.json (rows and what each metric means), OUT/sweep.csv (mean, low, high) and
    OUT/sweep.md (a Markdown table of the main measures, for the docs)."""
    meaning = dict(METRICS)
    (out / "sweep.json").write_text(json.dumps({"metrics": meaning, "rows": rows}, indent=2) + "\n")
    head = ["adoption", "risk_threshold", "test_delay_days", "seeds"]
    cols = [f"{m}_{part}" for m, _ in METRICS for part in ("mean", "low", "high")]
    lines = [",".join(head + cols)]
    for row in rows:
        cells = [
            f"{row['adoption']:g}",
            f"{row['risk_threshold']:g}",
            delay_name(tuple(row["test_delay_days"])),
            str(len(row["seeds"])),
        ]
        for m, _ in METRICS:
            for part in ("mean", "low", "high"):
                v = row[m][part]
                cells.append("" if v is None else f"{v:.4g}")
        lines.append(",".join(cells))
    (out / "sweep.csv").write_text("\n".join(lines) + "\n")
    (out / "sweep.md").write_text(markdown_table(rows))


MARKDOWN = (
    ("infected", "infected with the app", 0),
    ("infected_without_app", "without the app", 0),
    ("averted", "infections averted", 0),
    ("averted_share", "share averted", 3),
    ("r_effective", "R with the app", 2),
    ("r_effective_without_app", "R without", 2),
    ("warned", "warned", 0),
    ("warned_true_close", "of whom true close contacts", 0),
    ("isolated_needlessly", "isolated needlessly", 0),
    ("contact_to_warning_days", "days contact to warning (median)", 1),
    ("traced_share", "infections traced through the app", 3),
)
"""The columns of the Markdown table: measure, heading, decimals."""


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """The table for the docs: each cell the mean over seeds and its 95 % interval."""

    def cell(stat: dict[str, Any], decimals: int) -> str:
        if stat["mean"] is None:
            return "n/a"
        mean = f"{stat['mean']:,.{decimals}f}"
        if stat["low"] is None:
            return mean
        return f"{mean} ({stat['low']:,.{decimals}f} to {stat['high']:,.{decimals}f})"

    head = ["adoption", "risk threshold", "test delay (days)", "seeds"] + [
        h for _, h, _ in MARKDOWN
    ]
    head.insert(7, "averted, seed by seed")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = [
            f"{100 * row['adoption']:.0f} %",
            f"{row['risk_threshold']:g}",
            delay_name(tuple(row["test_delay_days"])),
            str(len(row["seeds"])),
        ] + [cell(row[m], d) for m, _, d in MARKDOWN]
        cells.insert(7, ", ".join(f"{v:,.0f}" for v in row["averted"].get("values") or []))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
