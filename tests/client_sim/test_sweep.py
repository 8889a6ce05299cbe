"""Sweeps: the grid of runs, the table against the same seeds without the app, the pages."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from client_sim.epidemic import EpidemicConfig
from client_sim.plots import adoption_law, plot_run, plot_sweep, run_headline, sweep_headline
from client_sim.sim import SimConfig
from client_sim.sweep import SweepConfig, summarise, tasks, write_table


def test_the_grid_has_one_baseline_per_seed_and_delay() -> None:
    sweep = SweepConfig(
        SimConfig(out=Path("x")),
        adoptions=(0.2, 0.6),
        thresholds=(0.1, 0.2),
        test_delays=((5.0, 9.0), (2.0, 4.0)),
        seeds=(1, 2, 3),
    )
    todo = tasks(sweep)
    baselines = [t for t in todo if not t.with_app]
    assert len(baselines) == 2 * 3 and len(todo) == 6 + 2 * 2 * 2 * 3
    assert len({t.name for t in todo}) == len(todo)
    assert todo[:6] == baselines  # quick ones first
    first = next(t for t in todo if t.with_app)
    assert first.config.adoption == 0.6 and not first.config.baseline
    assert not first.config.count_hellos
    assert {t.config.epidemic.test_delay_days for t in todo} == {(5.0, 9.0), (2.0, 4.0)}
    assert all(t.config.out.parent == Path("x/runs") for t in todo)


def report(seed: int, adoption: float, infected: int, traced: float | None = 0.1) -> dict[str, Any]:
    return {
        "seed": seed,
        "adoption": adoption,
        "risk_threshold": 0.1,
        "test_delay_days": [5.0, 9.0],
        "phones": 1000,
        "days": 60,
        "infected_with_app": infected,
        "infected_without_app": infected,
        "epidemic_with_app": {"r_effective": 1.1},
        "epidemic_without_app": {"r_effective": 1.3},
        "warned": 40,
        "warned_true_close": 30,
        "warned_not_within_2m": 0,
        "isolated_needlessly": 20,
        "contact_to_warning_days_median": 2.5,
        "traced_share": traced,
        "reports": 12,
        "recall": 0.8,
        "precision": 0.75,
        "true_close_contacts": 35,
        "true_close_contacts_warned": 28,
        "registrations": int(1000 * adoption),
        "curve_with_app": [],
    }


def test_infections_averted_are_counted_seed_by_seed(tmp_path: Path) -> None:
    reports = [
        report(1, 0.0, 300),
        report(2, 0.0, 200),
        report(1, 0.5, 280),
        report(2, 0.5, 170),
        report(1, 0.9, 250, 0.3),
    ]
    rows = summarise(reports)
    assert [r["adoption"] for r in rows] == [0.5, 0.9]
    half = rows[0]
    assert half["averted"]["values"] == [20.0, 30.0]
    assert half["infected_without_app"]["mean"] == 250.0
    assert half["averted_share"]["values"] == pytest.approx([20 / 300, 30 / 200])
    assert half["r_effective_without_app"]["mean"] == 1.3
    assert rows[1]["averted"]["values"] == [50.0] and rows[1]["averted"]["low"] is None
    write_table(rows, tmp_path)
    lines = (tmp_path / "sweep.csv").read_text().splitlines()
    assert lines[0].startswith("adoption,risk_threshold,test_delay_days,seeds,infected_mean")
    assert lines[1].startswith("0.5,0.1,5-9,2,225,")
    assert json.loads((tmp_path / "sweep.json").read_text())["rows"][0]["seeds"] == [1, 2]
    table = (tmp_path / "sweep.md").read_text().splitlines()
    assert table[2].startswith("| 50 % | 0.1 | 5-9 | 2 | 225 (")
    assert "| 25 (" in table[2] and table[3].startswith(
        "| 90 % | 0.1 | 5-9 | 1 | 250 | 300 | 50 | 50 | 0.167 |"
    )
    headline = sweep_headline(rows)
    assert headline.startswith("With 50 % adoption, the app averted about 25 infections")
    assert "from 20 to 30 over 2 seeds" in headline
    plot_sweep(rows, tmp_path / "sweep.png", ceiling=0.25)
    assert (tmp_path / "sweep.png").stat().st_size > 10_000
    assert (tmp_path / "sweep.pdf").read_bytes().startswith(b"%PDF")


def test_the_adoption_law_fit_recovers_its_constant() -> None:
    reports = [report(1, 0.0, 100)] + [report(1, a, 90, 0.2 * a * a) for a in (0.2, 0.4, 0.6, 0.8)]
    fit = adoption_law(summarise(reports))
    assert fit["c"] == pytest.approx(0.2) and fit["rms"] == pytest.approx(0.0, abs=1e-12)


def test_a_run_too_short_says_so(tmp_path: Path) -> None:
    short = report(1, 0.6, 10) | {"reports": 0, "infected_without_app": 10}
    short["curve_with_app"] = [
        {"day": d, "infected_total": 10, "reports": 0, "warned_total": 0} for d in range(3)
    ]
    short["curve_without_app"] = short["curve_with_app"]
    assert "too short to see the app at work" in run_headline(short)
    plot_run(short, tmp_path / "epidemic.png")
    assert (tmp_path / "epidemic.pdf").exists() and (tmp_path / "epidemic.png").exists()
    worked = report(1, 0.4, 90) | {"infected_without_app": 100}
    assert run_headline(worked).startswith(
        "With 40 % of people using the app, the app averted about 10 infections over 60 days"
    )


def test_scenarios_give_the_growth_they_promise() -> None:
    """Without the app, the unmitigated epidemic spreads faster than autumn 2020's (same town,
    same seed): more infections and a larger reproduction number."""
    import asyncio

    from client_sim.epidemic import scenario_config
    from client_sim.progress import Progress
    from client_sim.sim import Run

    results = {}
    for name in ("unmitigated", "autumn-2020"):
        config = SimConfig(
            phones=1500, days=21, seed=4, quiet=True,
            epidemic=replace(scenario_config(name, EpidemicConfig()), test_share=0.0),
        )  # fmt: skip
        run = Run(config, False, Progress(enabled=False))
        asyncio.run(run.run())
        results[name] = run.epidemic_measures()
    fast, slow = results["unmitigated"], results["autumn-2020"]
    assert fast["infected"] > slow["infected"]
    assert fast["r_effective"] > slow["r_effective"] > 0.8
    assert 3.5 < fast["generation_days_mean"] < 6.0
