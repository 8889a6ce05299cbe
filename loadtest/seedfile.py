"""The seed file: phones created directly in the store, as load generators read them.

Layout: ``MAGIC``, a 4-byte big-endian header length, a JSON header (keys directory, service
start, store URL, submission codes), then one 37-byte record per phone: ID_A (5 bytes) and K_A
(32 bytes). Records are read lazily through a memoryview, so 10^6 phones cost 37 MB and no
per-phone Python object until a phone is used.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from protocol.types import ID_A_SIZE, IdA, MacKey

MAGIC = b"ROBERT-SEED-1\n"
RECORD_SIZE = ID_A_SIZE + MacKey.SIZE
SEED_ENV = "ROBERT_LOADTEST_SEED"
"""Environment variable naming the seed file for the locustfile and the body generators."""


@dataclass(frozen=True)
class SeedFile:
    """Seeded phones and codes, and where the server keys are."""

    keys_dir: str
    time_start: int
    store: str
    codes: list[str]
    records: bytes = field(repr=False)

    @property
    def phones(self) -> int:
        """How many phones the file holds."""
        return len(self.records) // RECORD_SIZE

    def phone(self, index: int) -> tuple[IdA, MacKey]:
        """(ID_A, K_A) of phone ``index``."""
        start = index * RECORD_SIZE
        raw = self.records[start : start + RECORD_SIZE]
        return IdA(bytes(raw[:ID_A_SIZE])), MacKey(bytes(raw[ID_A_SIZE:]))

    def header(self) -> dict[str, Any]:
        """The JSON header."""
        return {
            "keys_dir": self.keys_dir,
            "time_start": self.time_start,
            "store": self.store.split("@")[-1],
            "phones": self.phones,
            "codes": self.codes,
        }

    def write(self, path: Path) -> None:
        """Write atomically (temporary file, then rename), mode 0600: it holds K_A keys."""
        head = json.dumps(self.header(), separators=(",", ":")).encode()
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(MAGIC + len(head).to_bytes(4, "big") + head)
            out.write(self.records)
        tmp.replace(path)

    @classmethod
    def read(cls, path: Path | str) -> SeedFile:
        """Load a seed file written by ``write``."""
        data = Path(path).read_bytes()
        if not data.startswith(MAGIC):
            raise ValueError(f"{path} is not a ROBERT seed file")
        at = len(MAGIC)
        size = int.from_bytes(data[at : at + 4], "big")
        head = json.loads(data[at + 4 : at + 4 + size])
        records = data[at + 4 + size :]
        if len(records) % RECORD_SIZE or len(records) // RECORD_SIZE != head["phones"]:
            raise ValueError(f"{path}: truncated phone records")
        return cls(head["keys_dir"], head["time_start"], head["store"], head["codes"], records)
