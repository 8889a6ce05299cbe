"""kit.cli: what every service's command line shares (here, the id arguments)."""

from __future__ import annotations

import argparse

import pytest

from kit.cli import row_id_arg
from kit.http import ROW_ID_MAX


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="robert samu log")
    p.add_argument("event", type=row_id_arg("event"))
    p.add_argument("--after", type=row_id_arg("entry", least=0), default=0)
    return p


def test_ids_on_the_command_line_follow_the_one_id_rule(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = parser().parse_args(["0042", "--after", "0"])
    assert (args.event, args.after) == (42, 0)
    assert parser().parse_args([str(ROW_ID_MAX)]).event == ROW_ID_MAX
    for argv, said in (
        (["0"], "argument event: no such event"),
        ([str(ROW_ID_MAX + 1)], "argument event: no such event"),
        (["9" * 5000], "argument event: no such event"),  # not int() of 5,000 digits
        (["x1"], "argument event: event must be a number"),
        (["1", "--after", "1.5"], "argument --after: entry must be a number"),
        (["١٢"], "argument event: event must be a number"),  # digits, but not ASCII ones
    ):
        with pytest.raises(SystemExit):
            parser().parse_args(argv)
        err = capsys.readouterr().err
        assert err.splitlines()[-1].endswith(said), (argv, err)
