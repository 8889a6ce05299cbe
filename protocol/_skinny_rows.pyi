"""Types of the compiled SKINNY-64 row loop and bit-sliced batch (``protocol/_skinny_rows.c``)."""

from collections.abc import Sequence

from typing_extensions import Buffer

class RowCipher:
    split: int
    def __init__(self, tables: Sequence[Buffer], c2: int) -> None: ...
    def encrypt(self, round_keys: Buffer, blocks: Buffer) -> bytes: ...
    def decrypt(self, round_keys: Buffer, blocks: Buffer) -> bytes: ...

def encrypt_runs(
    round_keys: Sequence[Buffer], runs: Sequence[tuple[int, int]], blocks: Buffer
) -> bytes: ...
def encrypt_counters(
    round_keys: Sequence[Buffer], runs: Sequence[tuple[int, int, int, int]]
) -> bytes: ...
