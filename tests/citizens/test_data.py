"""Every data file shipped with the package says where it comes from (data/README.md)."""

from __future__ import annotations

import re

from citizens.settings import DATA


def test_every_data_file_has_its_origin_and_licence() -> None:
    readme = (DATA / "README.md").read_text(encoding="utf-8")
    described = set(re.findall(r"^\| `([^`]+)` \|", readme, flags=re.MULTILINE))
    shipped = {p.name for p in DATA.iterdir() if p.is_file()} - {"README.md", "__init__.py"}
    assert described == shipped
    for line in readme.splitlines():
        if line.startswith("| `"):
            assert len(line.split(" | ")) == 4, line  # what, origin, licence all given
