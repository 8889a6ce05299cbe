"""docs/architecture.md: ``phone/`` may import only ``protocol`` of the project. An
import-linter contract (pyproject.toml) enforces it in ``make test``; this checks the contract
is there and forbids every other project package, new ones included."""

from __future__ import annotations

import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def test_a_contract_keeps_the_phone_to_the_protocol() -> None:
    linter = tomllib.loads(PYPROJECT.read_text())["tool"]["importlinter"]
    others = set(linter["root_packages"]) - {"phone", "protocol"}
    forbidding = [
        set(c["forbidden_modules"])
        for c in linter["contracts"]
        if c["type"] == "forbidden" and "phone" in c["source_modules"]
    ]
    assert any(others <= forbidden for forbidden in forbidding), others
