"""Types of the compiled SKINNY-64 row loop (``protocol/_skinny_rows.c``)."""

from collections.abc import Sequence

from typing_extensions import Buffer

class RowCipher:
    def __init__(self, tables: Sequence[Buffer], c2: int) -> None: ...
    def encrypt(self, round_keys: Buffer, blocks: Buffer) -> bytes: ...
    def decrypt(self, round_keys: Buffer, blocks: Buffer) -> bytes: ...
