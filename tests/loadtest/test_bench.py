"""loadtest.bench's side-by-side options (--before, --rounds, --pin), its CPU line and ratios."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from loadtest import services
from loadtest.bench import Bench, _median_run, paired_ratios, parse_args, ratios_line


def test_before_and_rounds_parse(tmp_path: Path) -> None:
    args = parse_args(["--before", str(tmp_path), "--rounds", "3"])
    assert args.before == tmp_path and args.rounds == 3
    plain = parse_args([])
    assert plain.before is None and plain.rounds == 1


def test_cpu_line_names_every_target(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bench = Bench(parse_args([]), tmp_path)
    bench.say_cpu({"status": {"cpu_us": 100.0}, "baseline": {"cpu_us": 50.0}})
    bench.say_cpu(
        {"status": {"cpu_us": 100.0}, "before": {"cpu_us": 125.0}, "baseline": {"cpu_us": 50.0}}
    )
    bench.say_cpu({"status": {"cpu_us": 100.0}, "baseline": {}})  # no CPU figure: no line
    assert capsys.readouterr().out.splitlines() == [
        "server CPU per request: status 100.0 us, baseline 50.0 us: baseline/status=0.50",
        "server CPU per request: status 100.0 us, before 125.0 us, baseline 50.0 us: "
        "baseline/status=0.50, baseline/before=0.40",
    ]


def test_median_of_runs() -> None:
    assert _median_run([{"cpu_us": 3.0}, {"cpu_us": 1.0}, {"cpu_us": 2.0}]) == {"cpu_us": 2.0}
    assert _median_run([{"cpu_us": 3.0}, {}]) == {}


def test_robert_command_of_another_tree(tmp_path: Path) -> None:
    assert services.robert_command() == [str(Path(sys.executable).parent / "robert")]
    command = services.robert_command(tmp_path)
    assert command[:2] == [sys.executable, "-c"]
    assert f"sys.path.insert(0, {str(tmp_path.resolve())!r})" in command[2]


def test_ratios_are_taken_within_each_round() -> None:
    status = [{"rps": 50.0}, {"rps": 60.0}, {"rps": 40.0}]
    baseline = [{"rps": 100.0}, {"rps": 100.0}, {"rps": 100.0}]
    assert paired_ratios(status, baseline) == [0.5, 0.6, 0.4]
    assert ratios_line("status", [0.5, 0.6, 0.4]) == (
        "status/baseline by round: 0.50 0.60 0.40; median 0.50, range 0.40-0.60"
    )
    # A machine twice as fast in the second round moves both sides of its ratio alike.
    drifting = paired_ratios([{"rps": 50.0}, {"rps": 100.0}], [{"rps": 100.0}, {"rps": 200.0}])
    assert drifting == [0.5, 0.5]
    with pytest.raises(ValueError):
        paired_ratios(status, baseline[:2])  # a round without its baseline is a bug


def test_placement_keeps_the_servers_cores_their_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(services.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    placement = services.Placement.split(1)
    assert placement.servers == {0} and placement.others == {1, 2, 3}
    assert services.Placement.split(2).servers == {0, 1}
    assert services.Placement.split(4) == services.Placement()  # nothing left for the others
    assert placement.describe() == ("server(s) on CPU 0; generator, Redis and worker on CPU 1,2,3")
    assert "shared" in services.Placement().describe()
    monkeypatch.setattr(services.shutil, "which", lambda name: None)
    assert services.Placement.split(1) == services.Placement()  # no taskset: no pinning


def test_taskset_prefixes_only_when_pinned() -> None:
    assert services.taskset(["wrk", "-t2"], frozenset({3, 1})) == [
        "taskset", "-c", "1,3", "wrk", "-t2",
    ]  # fmt: skip
    assert services.taskset(["wrk"], frozenset()) == ["wrk"]


def test_pin_is_the_default_and_can_be_turned_off(tmp_path: Path) -> None:
    assert parse_args([]).pin is True
    assert Bench(parse_args(["--no-pin"]), tmp_path).placement == services.Placement()
