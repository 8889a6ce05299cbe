"""Request bodies of the load tests, every one a real protocol message built with ``protocol/``.

A real phone learns its EBIDs from the tuples the server sends; a load generator holding 10^6
phones cannot keep 10^6 tuple bundles, so it computes the EBID of the current epoch itself from
the server keys directory the seed file names (``make_ebid(K_S of the day, epoch, ID_A)``).
That shortcut needs read access to the keys, which only a test bench has.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric import ec

from loadtest.seedfile import SeedFile
from phone.client import API
from protocol.auth import RequestKind, b64encode, build_request
from protocol.contacts import Contact, HelloRecord
from protocol.ebid import FRANCE, make_ebid, make_ecc
from protocol.epochs import day_of_epoch, epoch_of, ntp_from_unix
from protocol.hello import build_hello
from protocol.registration import CURVE, public_key_spki
from protocol.types import EbidKey, FederationKey
from server.keys import ServerKeys

JSON_HEADERS = {"Content-Type": "application/json"}


class Messages:
    """Builds status, register, report and malformed bodies for the phones of a seed file."""

    def __init__(self, seed: SeedFile, clock: Callable[[], float]) -> None:
        self.seed = seed
        self.clock = clock
        self.keys = ServerKeys(Path(seed.keys_dir))
        self.keys.reload()

    # --- time and keys ---------------------------------------------------------------------
    def now_ntp(self) -> int:
        """The generator's clock in NTP seconds."""
        return ntp_from_unix(self.clock())

    def epoch(self, now_ntp: int) -> int:
        """The epoch of ``now_ntp``."""
        return epoch_of(now_ntp, self.seed.time_start)

    def k_s(self, epoch: int) -> EbidKey:
        """K_S of the epoch's day (reloaded once if the server made it after we started)."""
        day = day_of_epoch(epoch, self.seed.time_start)
        if not self.keys.has_day(day):
            self.keys.reload()
        return self.keys.key_of_day(day)

    @property
    def k_g(self) -> FederationKey:
        """The federation key (ECCs of reported EBIDs)."""
        return self.keys.k_g

    # --- bodies ----------------------------------------------------------------------------
    def status_fields(
        self, index: int, now_ntp: int, kind: RequestKind = RequestKind.STATUS
    ) -> dict[str, Any]:
        """The authenticated request of phone ``index`` at ``now_ntp`` (current epoch's EBID)."""
        owner, k_a = self.seed.phone(index)
        epoch = self.epoch(now_ntp)
        ebid = make_ebid(self.k_s(epoch), epoch, owner)
        return build_request(k_a, kind, ebid, epoch, now_ntp).to_fields()

    def status_body(self, index: int, now_ntp: int) -> bytes:
        """JSON body of phone ``index``'s status request at ``now_ntp``."""
        return orjson.dumps(self.status_fields(index, now_ntp))

    def report_body(self, code: str, contact_indexes: list[int], now_ntp: int) -> bytes:
        """A report gated by ``code`` listing two HELLOs from each phone of ``contact_indexes``,
        heard 60 and 30 s ago in this epoch (real EBIDs, ECCs and HELLO MACs)."""
        epoch = self.epoch(now_ntp)
        k_s = self.k_s(epoch)
        contacts = []
        for index in contact_indexes:
            owner, k_a = self.seed.phone(index)
            ebid = make_ebid(k_s, epoch, owner)
            ecc = make_ecc(self.k_g, ebid, FRANCE)
            records = []
            for ago in (60, 30):
                heard = now_ntp - ago
                hello = build_hello(k_a, ecc, ebid, heard)
                records.append(HelloRecord(heard, hello.time, hello.mac, -60))
            contacts.append(Contact(ebid, ecc, tuple(records)).to_fields())
        return orjson.dumps({"token": code, "contacts": contacts})


NO_CAPTCHA_ID = "0" * 32
"""The captcha id of a registration to a server whose gate is off (any answer passes, but the
apps' contract still has the field)."""


def register_body(captcha: str = "", captcha_id: str = NO_CAPTCHA_ID) -> bytes:
    """A registration with a fresh P-256 key (SubjectPublicKeyInfo, base64), as the apps send
    it: captcha, captchaId, clientPublicECDHKey."""
    spki = public_key_spki(ec.generate_private_key(CURVE))
    body: dict[str, Any] = {
        "captcha": captcha,
        "captchaId": captcha_id,
        "clientPublicECDHKey": b64encode(spki),
    }
    return orjson.dumps(body)


def malformed_requests(
    messages: Messages, index: int, now_ntp: int
) -> list[tuple[str, str, bytes]]:
    """(name, path, body) of requests the server must refuse with a 4xx."""
    good = messages.status_fields(index, now_ntp)
    bad_mac = dict(good, mac=b64encode(bytes(32)))
    short_ebid = dict(good, ebid=b64encode(b"\x00" * 7))
    stranger = dict(good, ebid=b64encode(secrets.token_bytes(8)))
    missing = {k: v for k, v in good.items() if k != "mac"}
    return [
        ("malformed:not_json", f"{API}/status", b"{not json"),
        ("malformed:missing_field", f"{API}/status", orjson.dumps(missing)),
        ("malformed:short_ebid", f"{API}/status", orjson.dumps(short_ebid)),
        ("malformed:bad_mac", f"{API}/status", orjson.dumps(bad_mac)),
        ("malformed:unknown_ebid", f"{API}/status", orjson.dumps(stranger)),
        # Not a bad token: the server counts failed codes per client address, and every
        # generator request comes from one address; a contact list that does not parse is
        # refused before the code is looked at.
        ("malformed:bad_contacts", f"{API}/report", orjson.dumps({"token": "x", "contacts": 1})),
        (
            "malformed:bad_key",
            f"{API}/register",
            orjson.dumps(
                {
                    "captcha": "",
                    "captchaId": NO_CAPTCHA_ID,
                    "clientPublicECDHKey": b64encode(b"not a key"),
                }
            ),
        ),
    ]
