"""``robert sim``: run the simulated town against a real server and write a report."""

from __future__ import annotations

import argparse
import importlib.util
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from redis.exceptions import RedisError

from client_sim.epidemic import DEFAULT_SCENARIO, SCENARIOS, EpidemicConfig, scenario_config
from client_sim.plots import run_headline as headline
from client_sim.progress import Progress
from client_sim.radio import RadioConfig
from client_sim.sim import SimConfig, simulate
from client_sim.sweep import (
    SweepConfig,
    delay_name,
    load_reports,
    run_sweep,
    summarise,
    write_table,
)
from kit.cli import CommandError, writable_directory
from server.processes import run_event_loop

TIMING_FIELDS = ("timing",)
"""Top-level report fields that vary between identical runs."""


def add_subcommands(subparsers: Any) -> None:
    """Register ``sim`` with the ``robert`` dispatcher."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "sim",
        help="simulate a town of phones against a real server",
        description=(
            "Simulate N people with phones for some days: households, workplaces, schools, "
            "trains and leisure places; HELLOs through a radio model; an epidemic with tests, "
            "reports and isolation. By default the real server runs in-process on loopback "
            "with a virtual clock (embedded SQLite store in OUT/server). Writes OUT/report.json "
            "(recall, precision, counts, timings, epidemic curves with and without the app) "
            "and OUT/epidemic.png."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    d, e, r = SimConfig(), EpidemicConfig(), RadioConfig()
    p.add_argument("--phones", type=int, default=d.phones, help="people in the town")
    p.add_argument("--days", type=int, default=d.days, help="simulated days")
    p.add_argument("--out", type=Path, default=d.out, help="output directory")
    p.add_argument("--seed", type=int, default=d.seed, help="random seed (same seed, same run)")
    p.add_argument(
        "--store",
        default=d.store,
        help="store URL of the in-process server (sqlite:///..., redis://host:port/db)",
    )
    p.add_argument(
        "--server",
        default=d.server,
        help="URL of a running server instead of the in-process "
        "one; runs in REAL time (a day takes a day): for small, short runs only",
    )
    p.add_argument(
        "--codes-key",
        default=d.codes_key,
        help="with --server: API key of a lab of the code service, for the positives' codes",
    )
    p.add_argument(
        "--codes-url",
        default=d.codes_url,
        help="with --server: base URL of the code service (default: the server's)",
    )
    p.add_argument(
        "--risk-threshold",
        type=float,
        default=d.risk_threshold,
        help="server risk threshold (ROBERT_RISK_THRESHOLD)",
    )
    p.add_argument(
        "--report-share",
        type=float,
        default=d.report_share,
        help="share of positive app users who report",
    )
    p.add_argument(
        "--adoption", type=float, default=d.adoption, help="share of people with the app"
    )
    p.add_argument(
        "--test-share",
        type=float,
        default=e.test_share,
        help="share of infected people who get tested",
    )
    p.add_argument(
        "--test-delay",
        type=float,
        nargs=2,
        default=e.test_delay_days,
        metavar=("MIN", "MAX"),
        help="days from infection to a positive result",
    )
    p.add_argument(
        "--adherence",
        type=float,
        default=e.adherence,
        help="chance that a warned or positive person isolates",
    )
    p.add_argument(
        "--scenario",
        choices=sorted(SCENARIOS),
        default=DEFAULT_SCENARIO,
        help="the epidemic: " + "; ".join(f"{s.name}: {s.description}" for s in SCENARIOS.values()),
    )
    p.add_argument(
        "--beta",
        type=float,
        default=None,
        help="infection probability per minute of close contact at peak infectiousness "
        "(default: the scenario's)",
    )
    p.add_argument(
        "--dummy-days",
        type=float,
        default=d.dummy_days,
        help="mean days between two dummy reports of a phone, as the apps send them "
        "(phone.dummies); 0 for none (large towns: each is as big as a real report)",
    )
    p.add_argument(
        "--no-hello-count",
        action="store_true",
        help="do not count every HELLO the town exchanges (saves a core; sweeps do this)",
    )
    p.add_argument(
        "--initial-infected",
        type=float,
        default=e.initial_infected,
        help="share of people infected at the start",
    )
    p.add_argument(
        "--hello-interval",
        type=int,
        default=r.hello_interval,
        help="seconds between HELLOs a receiver keeps from one sender",
    )
    p.add_argument(
        "--close-distance",
        type=float,
        default=d.close_distance,
        help="ground truth: metres of a close contact",
    )
    p.add_argument(
        "--close-minutes",
        type=float,
        default=d.close_minutes,
        help="ground truth: minutes (cumulated over 14 days) of a close contact",
    )
    p.add_argument("--concurrency", type=int, default=d.concurrency, help="HTTP requests in flight")
    p.add_argument(
        "--server-process",
        action="store_true",
        help="run the simulator's server in a child process (same app, same virtual clock), so "
        "that phones and server use two cores: for large towns",
    )
    p.add_argument("--no-baseline", action="store_true", help="skip the run without the app")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_sim)
    add_sweep_parser(p.add_subparsers(dest="sim_command", metavar="{sweep}"))


def add_sweep_parser(subparsers: Any) -> None:
    """``robert sim sweep``."""
    d, e, w = SimConfig(), EpidemicConfig(), SweepConfig(SimConfig())
    s: argparse.ArgumentParser = subparsers.add_parser(
        "sweep",
        help="the same town over adoption rates, risk thresholds, test delays and seeds",
        description=(
            "Run the simulated town once per combination of adoption rate, risk threshold, "
            "test delay and seed (with the app), and once per seed and test delay without it, "
            "in parallel processes; write OUT/sweep.csv, OUT/sweep.json (mean and 95 %% "
            "interval over seeds) and OUT/sweep.png/.pdf. Runs already in OUT/runs are kept: "
            "the same command resumes a sweep, or redraws its table and plots."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    s.add_argument("--phones", type=int, default=5000, help="people in the town")
    s.add_argument("--days", type=int, default=60, help="simulated days")
    s.add_argument("--out", type=Path, default=Path("sim-sweep"), help="output directory")
    s.add_argument("--seeds", type=int, nargs="+", default=list(w.seeds), help="random seeds")
    s.add_argument(
        "--adoptions", type=float, nargs="+", default=list(w.adoptions), help="adoption rates"
    )
    s.add_argument(
        "--thresholds", type=float, nargs="+", default=list(w.thresholds), help="risk thresholds"
    )
    s.add_argument(
        "--test-delays",
        nargs="+",
        default=[delay_name(x) for x in w.test_delays],
        metavar="MIN-MAX",
        help="days from infection to a positive result (uniform), e.g. 5-9 3-5",
    )
    s.add_argument("--workers", type=int, default=w.workers, help="processes at once")
    s.add_argument("--scenario", choices=sorted(SCENARIOS), default=DEFAULT_SCENARIO)
    s.add_argument("--test-share", type=float, default=e.test_share)
    s.add_argument("--report-share", type=float, default=d.report_share)
    s.add_argument("--adherence", type=float, default=e.adherence)
    s.add_argument(
        "--initial-infected",
        type=float,
        default=e.initial_infected,
        help="share of people infected at the start",
    )
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.add_argument(
        "--table-only",
        action="store_true",
        help="run nothing: the table and the plots of the runs already in OUT/runs "
        "(a sweep cut short)",
    )
    s.set_defaults(func=cmd_sweep)


def parse_delay(text: str) -> tuple[float, float]:
    """``5-9`` -> (5.0, 9.0), or a one-line error."""
    try:
        low, high = (float(x) for x in text.split("-"))
    except ValueError:
        raise CommandError(f"--test-delays takes MIN-MAX in days, like 5-9, not {text!r}") from None
    if not 0 <= low <= high:
        raise CommandError(f"--test-delays {text}: need 0 <= MIN <= MAX")
    return low, high


def cmd_sweep(args: argparse.Namespace) -> int:
    """Run the grid (what is not done yet), then write the table and the plots."""
    check_args(args)
    if args.workers < 1:
        raise CommandError(f"--workers must be at least 1, not {args.workers}")
    for name, values in (("adoptions", args.adoptions), ("thresholds", args.thresholds)):
        if any(not 0 < v <= 1 for v in values):
            raise CommandError(f"--{name} are shares: above 0 and at most 1")
    writable_directory(args.out, "output directory")
    if importlib.util.find_spec("matplotlib") is None:
        raise CommandError(
            "robert sim sweep draws its plots with matplotlib: pip install -e '.[sim]'"
        )
    base = SimConfig(
        phones=args.phones,
        days=args.days,
        out=args.out,
        report_share=args.report_share,
        scenario=args.scenario,
        epidemic=replace(
            scenario_config(args.scenario),
            test_share=args.test_share,
            adherence=args.adherence,
            initial_infected=args.initial_infected,
        ),
    )
    sweep = SweepConfig(
        base,
        adoptions=tuple(args.adoptions),
        thresholds=tuple(args.thresholds),
        test_delays=tuple(parse_delay(t) for t in args.test_delays),
        seeds=tuple(args.seeds),
        workers=args.workers,
    )
    if not args.table_only:
        progress = Progress(enabled=not args.quiet)
        run_sweep(sweep, progress)
        progress.close()
    rows = summarise(load_reports(args.out))
    write_table(rows, args.out)
    if rows:
        from client_sim.plots import adoption_law, plot_sweep, sweep_headline

        plot_sweep(rows, args.out / "sweep.png", args.test_share * args.report_share)
        law = adoption_law(rows)
        print(sweep_headline(rows))
        print(
            f"share of infections traced through the app = {law['c']:.3f} x adoption² "
            f"(root mean square gap {law['rms']:.4f})"
        )
    print(
        f"{len(rows)} rows: {args.out / 'sweep.csv'}, {args.out / 'sweep.json'}, "
        f"{args.out / 'sweep.png'} and .pdf"
    )
    return 0


def config_from_args(args: argparse.Namespace) -> SimConfig:
    """The SimConfig the flags describe."""
    base = SimConfig()
    return replace(
        base,
        phones=args.phones,
        days=args.days,
        seed=args.seed,
        out=args.out,
        store=args.store,
        server=args.server,
        codes_url=args.codes_url,
        codes_key=args.codes_key,
        server_process=args.server_process,
        risk_threshold=args.risk_threshold,
        report_share=args.report_share,
        adoption=args.adoption,
        close_distance=args.close_distance,
        close_minutes=args.close_minutes,
        concurrency=args.concurrency,
        baseline=not args.no_baseline,
        quiet=args.quiet,
        scenario=args.scenario,
        count_hellos=not args.no_hello_count,
        dummy_days=args.dummy_days,
        radio=replace(base.radio, hello_interval=args.hello_interval),
        epidemic=replace(
            scenario_config(args.scenario, base.epidemic),
            test_share=args.test_share,
            test_delay_days=tuple(args.test_delay),
            adherence=args.adherence,
            initial_infected=args.initial_infected,
            **({} if args.beta is None else {"beta": args.beta}),
        ),
    )


def check_args(args: argparse.Namespace) -> None:
    """Refuse a town or a run that cannot be simulated, with the flag to change."""
    if args.phones < 2:
        raise CommandError(f"--phones must be at least 2 (a town needs people), not {args.phones}")
    if args.days < 1:
        raise CommandError(f"--days must be at least 1, not {args.days}")
    for name in ("report_share", "test_share", "adherence"):
        value = getattr(args, name, None)
        if value is not None and not 0.0 <= value <= 1.0:
            flag = "--" + name.replace("_", "-")
            raise CommandError(f"{flag} is a share: between 0 and 1, not {value}")


def cmd_sim(args: argparse.Namespace) -> int:
    """Run, print a summary, write the report and the plot."""
    check_args(args)
    if importlib.util.find_spec("matplotlib") is None:
        raise CommandError(
            "robert sim draws its plots with matplotlib: pip install -e '.[sim]' (make test does)"
        )
    config = config_from_args(args)
    writable_directory(config.out, "output directory")
    try:
        report = run_event_loop(simulate(config))
    except (RuntimeError, RedisError) as exc:  # no server, or no store to reach
        raise CommandError(str(exc)) from None
    write_report(report, config.out)
    print(summary(report))
    return 0


def write_report(report: dict[str, Any], out: Path) -> None:
    """OUT/report.json and OUT/epidemic.png and .pdf."""
    from client_sim.plots import plot_run  # matplotlib, checked by the caller

    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    plot_run(report, out / "epidemic.png")


def summary(report: dict[str, Any]) -> str:
    """A few lines for the terminal."""
    t = report["timing"]

    def pct(value: float | None) -> str:
        return "n/a" if value is None else f"{100 * value:.1f}%"

    return "\n".join(
        [
            f"phones {report['phones']}, days {report['days']}, seed {report['seed']}, "
            f"risk threshold {report['risk_threshold']}",
            f"registrations {report['registrations']}, status requests "
            f"{report['status_requests']}, reports {report['reports']}, "
            f"notifications {report['notifications']}",
            f"HELLOs exchanged {report['hellos_exchanged']:,}, reported "
            f"{report['hellos_reported']:,}",
            f"recall {pct(report['recall'])} ({report['true_close_contacts_warned']} of "
            f"{report['true_close_contacts']} true close contacts warned), precision "
            f"{pct(report['precision'])} (within 2 m: {pct(report['precision_2m'])})",
            f"infected: {report['infected_with_app']} with the app, "
            f"{report['infected_without_app']} without",
            headline(report),
            f"wall {t['wall_seconds']} s, {t['hellos_per_second'] or 0:,} HELLOs/s, "
            f"peak memory {t['peak_memory_mb']} MB",
        ]
    )
