"""protocol/ stays sans-IO: no adapters, no I/O modules, no clocks, no ambient randomness."""

import ast
from pathlib import Path

import pytest

PROTOCOL = Path(__file__).parents[2] / "protocol"
FORBIDDEN_MODULES = {
    "server",
    "client_sim",
    "ble",
    "loadtest",
    "socket",
    "asyncio",
    "os",
    "io",
    "time",
    "random",
    "secrets",
    "logging",
    "pathlib",
    "subprocess",
    "urllib",
    "http",
    "aiohttp",
    "redis",
    "sqlite3",
    "requests",
    "threading",
}
FORBIDDEN_CALLS = {"now", "utcnow", "today", "time", "urandom", "token_bytes", "open", "print"}


@pytest.mark.parametrize("path", sorted(PROTOCOL.glob("*.py")), ids=lambda p: p.name)
def test_module_is_sans_io(path: Path) -> None:
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        else:
            names = []
        for name in names:
            assert name.split(".")[0] not in FORBIDDEN_MODULES, f"{path.name} imports {name}"
        if isinstance(node, ast.Call):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            assert called not in FORBIDDEN_CALLS, f"{path.name} calls {called}()"
