"""Identity rules that SI-DEP, Contact Covid and SI-VIC must share to link their records:
name normalisation, keyed pseudonyms, the NIR check and the INS OIDs (docs/health.md §1.7, §3.3).

The first national pseudonymisation of 2020 was too strict: "Céline" and "Celine" gave two
pseudonyms to one person, who was then counted twice; the May 2021 fix normalised the names
first. Here, names are normalised before anything else, and the pseudonym is an HMAC (never a
plain hash: names and birth dates are few enough to be tried one by one without a key).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
import unicodedata
from datetime import date

from stdnum.exceptions import InvalidChecksum, InvalidFormat, InvalidLength, ValidationError
from stdnum.fr import nir as stdnum_nir

# --- INS ------------------------------------------------------------------------------------------
INS_NIR_OID = "1.2.250.1.213.1.4.8"
"""INS built on a NIR (the usual case)."""
INS_NIA_OID = "1.2.250.1.213.1.4.9"
"""INS built on a NIA (a temporary number, awaiting a NIR)."""
INS_NIR_TEST_OID = "1.2.250.1.213.1.4.10"
"""INS-NIR of test identities."""
INS_NIR_DEMO_OID = "1.2.250.1.213.1.4.11"
"""INS-NIR of demonstration identities."""
INS_OIDS = (INS_NIR_OID, INS_NIA_OID, INS_NIR_TEST_OID, INS_NIR_DEMO_OID)
"""The four authorities of an INS, in the order of the FR Core INS invariant."""


def ins_system(oid: str) -> str:
    """The FHIR ``identifier.system`` of an INS authority: ``urn:oid:1.2.250.1.213.1.4.8``."""
    if oid not in INS_OIDS:
        raise ValueError(f"not an INS authority OID: {oid}")
    return f"urn:oid:{oid}"


# --- NIR ------------------------------------------------------------------------------------------
class InvalidNir(ValueError):
    """A NIR that is not one; the message says why (format, length, key)."""


def validate_nir(value: str) -> str:
    """The NIR without separators (15 characters), or ``InvalidNir``.

    The key is ``97 - (first 13 digits mod 97)``, Corsica's ``2A``/``2B`` counting as ``19``/
    ``18`` (python-stdnum's ``stdnum.fr.nir``). The month is *not* checked: 20 to 30 and 50 are
    real months of people registered from an incomplete civil record."""
    try:
        return str(stdnum_nir.validate(value))
    except InvalidLength:
        raise InvalidNir("a NIR has 15 characters (13 and a 2-digit key)") from None
    except InvalidChecksum:
        raise InvalidNir("the NIR's key does not match its first 13 characters") from None
    except (InvalidFormat, ValidationError):
        raise InvalidNir("a NIR is digits, with 2A or 2B for Corsica in positions 6-7") from None


def is_valid_nir(value: str) -> bool:
    """Whether ``value`` is a NIR with a right key."""
    try:
        validate_nir(value)
    except InvalidNir:
        return False
    return True


def nir_key(first13: str) -> str:
    """The 2-digit key of the first 13 characters of a NIR."""
    return str(stdnum_nir.calc_check_digits(first13))


# --- names ----------------------------------------------------------------------------------------
# Latin letters that Unicode does not decompose into a base letter and a mark.
_UNDECOMPOSED = str.maketrans(
    {
        "Œ": "OE", "œ": "OE", "Æ": "AE", "æ": "AE", "Ø": "O", "ø": "O", "Ł": "L", "ł": "L",
        "Đ": "D", "đ": "D", "Ð": "D", "ð": "D", "Þ": "TH", "þ": "TH", "ß": "SS", "ẞ": "SS",
        "ı": "I",
    }
)  # fmt: skip


@functools.lru_cache(maxsize=65_536)
def normalise_name(name: str) -> str:
    """A name as pseudonyms and comparisons use it: accents dropped (NFKD, combining marks
    removed), ligatures spelt out (Œ → OE), upper case, and every run of anything but a
    letter (hyphens, apostrophes, spaces, dots, digits) turned into one space, trimmed.

    ``"Élodie Dupont-Lefèvre"`` and ``"ELODIE  DUPONT LEFEVRE"`` both give
    ``"ELODIE DUPONT LEFEVRE"``. Letters of other scripts are kept, upper-cased.

    Cached (names repeat: a lab's batch, a family), and ASCII names take a short path with
    the same result (a tenth of the time: SI-DEP's intake names every result's patient)."""
    if name.isascii():
        return _NOT_ASCII_LETTERS.sub(" ", name.upper()).strip()
    decomposed = unicodedata.normalize("NFKD", name.translate(_UNDECOMPOSED))
    letters = "".join(c for c in decomposed if not unicodedata.combining(c))
    upper = unicodedata.normalize("NFKD", letters.upper().translate(_UNDECOMPOSED))
    kept = "".join(c if _is_letter(c) else " " for c in upper if not unicodedata.combining(c))
    return " ".join(kept.split())


_NOT_ASCII_LETTERS = re.compile(r"[^A-Z]+")


def _is_letter(c: str) -> bool:
    # Modifier letters (ʼ U+02BC, a common apostrophe of keyboards) separate, as apostrophes do.
    return c.isalpha() and unicodedata.category(c) != "Lm"


# --- pseudonyms -----------------------------------------------------------------------------------
PSEUDONYM_DOMAIN = b"kit-pseudonym-v1"
MIN_KEY_BYTES = 16


def pseudonym_message(last_name: str, first_name: str, birth_date: date) -> bytes:
    """The bytes a pseudonym authenticates, unambiguously::

        "kit-pseudonym-v1" || 0x00
        || len(LAST) as 2 bytes big-endian || LAST
        || len(FIRST) as 2 bytes big-endian || FIRST
        || birth date as YYYY-MM-DD

    where LAST and FIRST are the UTF-8 of the normalised names: the lengths make
    ("AB", "C") and ("A", "BC") different messages."""
    last, first = normalise_name(last_name), normalise_name(first_name)
    if not last or not first:
        raise ValueError("a pseudonym needs a last name and a first name with letters")
    parts = [PSEUDONYM_DOMAIN, b"\x00"]
    for field in (last.encode(), first.encode()):
        if len(field) > 0xFFFF:
            raise ValueError("a name is too long")
        parts += [len(field).to_bytes(2, "big"), field]
    parts.append(birth_date.isoformat().encode())
    return b"".join(parts)


def pseudonym(key: bytes, last_name: str, first_name: str, birth_date: date) -> str:
    """The 64-hex-character pseudonym of a person: HMAC-SHA256 under ``key`` of
    ``pseudonym_message``. Services that must link records share the key (held by their
    export jobs only); a recipient that must not link gets another key."""
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"a pseudonym key has at least {MIN_KEY_BYTES} bytes")
    message = pseudonym_message(last_name, first_name, birth_date)
    return hmac.new(key, message, hashlib.sha256).hexdigest()
