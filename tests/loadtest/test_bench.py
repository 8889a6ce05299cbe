"""loadtest.bench's side-by-side options (--before, --rounds) and its CPU line."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from loadtest import services
from loadtest.bench import Bench, _median_run, parse_args


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
