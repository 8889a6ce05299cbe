"""The abuse suite's closing table (the scenarios themselves run against real servers, by hand:
docs/operations.md)."""

from __future__ import annotations

from loadtest.abuse import closing_table


def test_a_repeated_scenario_keeps_each_run_in_the_closing_table() -> None:
    results = {"before": ["b1", "s1", "b2"], "after": ["b1'", "s1'"]}
    assert closing_table(["burst", "status", "burst"], results) == [
        "| burst | before | b1 |",
        "| burst | after | b1' |",
        "| status | before | s1 |",
        "| status | after | s1' |",
        "| burst | before | b2 |",
        "| burst | after | - |",
    ]
