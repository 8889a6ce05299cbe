"""What ``ble scan`` and ``ble run`` show: one line per record, or a refreshed table per EBID."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TextIO

from ble.collector import HeardHello, RecordListener
from protocol.epochs import datetime_from_ntp


def format_record(record: HeardHello) -> str:
    """One printed line per HELLO record."""
    moment = datetime_from_ntp(record.received_ntp).strftime("%H:%M:%S")
    hello = record.hello
    return (
        f"{moment} ebid={hello.ebid.hex()} ecc={hello.ecc.hex()} time16={hello.time} "
        f"rssi={record.rssi_raw} cal={record.rssi_calibrated} tx={record.tx_gain} "
        f"v={record.version} from={record.address} n={record.samples}"
    )


class LinePrinter(RecordListener):
    """Prints every record as it is handed to the sink."""

    def __init__(self, out: TextIO | None = None) -> None:
        self._out = out  # None: whatever sys.stdout is when printing

    def on_record(self, record: HeardHello) -> None:
        print(format_record(record), file=self._out or sys.stdout, flush=True)


@dataclass(slots=True)
class EbidStats:
    """What the table shows for one EBID."""

    ecc: bytes
    first_ntp: int
    last_ntp: int
    records: int
    last_raw: int
    last_calibrated: int
    max_calibrated: int


class LiveTable(RecordListener):
    """HELLOs heard per EBID with their RSSI, redrawn in place on a terminal."""

    def __init__(self, out: TextIO | None = None, max_rows: int = 30) -> None:
        self._out = out
        self._max_rows = max_rows
        self.rows: dict[bytes, EbidStats] = {}

    def on_record(self, record: HeardHello) -> None:
        row = self.rows.get(record.hello.ebid)
        if row is None:
            self.rows[record.hello.ebid] = EbidStats(
                record.hello.ecc,
                record.received_ntp,
                record.received_ntp,
                1,
                record.rssi_raw,
                record.rssi_calibrated,
                record.rssi_calibrated,
            )
            return
        row.last_ntp = record.received_ntp
        row.records += 1
        row.last_raw = record.rssi_raw
        row.last_calibrated = record.rssi_calibrated
        row.max_calibrated = max(row.max_calibrated, record.rssi_calibrated)

    def render(self, now_ntp: int, header: str = "") -> str:
        """The table as text, most recently heard first."""
        lines = [header] if header else []
        lines.append(
            f"{'EBID':16} {'ECC':3} {'HELLOs':>6} {'raw':>5} {'cal':>5} {'max':>5} {'ago':>5}"
        )
        rows = sorted(self.rows.items(), key=lambda item: -item[1].last_ntp)[: self._max_rows]
        for ebid, row in rows:
            lines.append(
                f"{ebid.hex():16} {row.ecc.hex():3} {row.records:>6} {row.last_raw:>5} "
                f"{row.last_calibrated:>5} {row.max_calibrated:>5} {now_ntp - row.last_ntp:>4}s"
            )
        if not self.rows:
            lines.append("(no HELLO heard yet)")
        return "\n".join(lines)

    def draw(self, now_ntp: int, header: str = "") -> None:
        """Redraw in place on a terminal; append plainly when output is a file or pipe."""
        text = self.render(now_ntp, header)
        out = self._out or sys.stdout
        if out.isatty():
            out.write("\x1b[H\x1b[2J" + text + "\n")
        else:
            out.write(text + "\n\n")
        out.flush()
