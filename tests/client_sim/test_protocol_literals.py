"""The protocol's numbers live in ``protocol/``: the simulator and the protocol benches take
the epoch's length, epochs per day and the HELLO tolerance from there, never as literals
(a change of the protocol would otherwise leave them silently wrong)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from protocol.epochs import EPOCH_DURATION, EPOCHS_PER_DAY
from protocol.hello import DEFAULT_TOLERANCE

ROOT = Path(__file__).resolve().parents[2]
FILES = sorted(
    [
        *(ROOT / "client_sim").glob("*.py"),
        ROOT / "loadtest" / "bench_protocol.py",
        ROOT / "loadtest" / "baseline.py",
    ]
)
PROTOCOL_NUMBERS = {
    EPOCH_DURATION: "EPOCH_DURATION",
    EPOCHS_PER_DAY: "EPOCHS_PER_DAY",
    DEFAULT_TOLERANCE: "DEFAULT_TOLERANCE",
}


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_protocol_number_written_as_a_literal(path: Path) -> None:
    found = [
        f"{path.name}:{node.lineno}: {node.value} (use {PROTOCOL_NUMBERS[node.value]})"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Constant)
        and type(node.value) is int
        and node.value in PROTOCOL_NUMBERS
    ]
    assert not found, found
