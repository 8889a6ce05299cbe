"""kit.identity: the NIR on the verified vectors of docs/health.md §1.7, name normalisation
invariants (hypothesis), and the pseudonym's documented encoding."""

from __future__ import annotations

import hashlib
import hmac
import string
import unicodedata
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kit.identity import (
    INS_NIR_OID,
    INS_OIDS,
    InvalidNir,
    ins_system,
    is_valid_nir,
    nir_key,
    normalise_name,
    pseudonym,
    pseudonym_message,
    validate_nir,
)

KEY = bytes(range(32))


# --- NIR ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "nir",
    ["295109912611193", "253072B07300470", "253072A07300443", "185057512345673", "255081416802538"],
)
def test_verified_nirs_are_valid(nir: str) -> None:
    assert validate_nir(nir) == nir and is_valid_nir(nir)


def test_separators_are_accepted() -> None:
    assert validate_nir("2 95 10 99 126 111 93") == "295109912611193"
    assert validate_nir("2.53.07.2b.073.004.70") == "253072B07300470"


@pytest.mark.parametrize(
    ("nir", "reason"),
    [
        ("295109912611199", "key does not match"),
        ("285031512345678", "key does not match"),  # a public sample with a wrong key (59)
        ("29510991261119", "15 characters"),
        ("2951099126111933", "15 characters"),
        ("29510X9912611193", "digits"),
        ("253072C07300470", "digits"),
    ],
)
def test_bad_nirs_say_why(nir: str, reason: str) -> None:
    with pytest.raises(InvalidNir, match=reason):
        validate_nir(nir)
    assert not is_valid_nir(nir)


@pytest.mark.parametrize("month", ["20", "30", "50", "99", "00"])
def test_the_month_is_never_a_reason_to_refuse(month: str) -> None:
    first13 = f"185{month}75123456"
    assert is_valid_nir(first13 + nir_key(first13))


def test_the_key_algorithm() -> None:
    assert nir_key("2951099126111") == "93"
    assert nir_key("253072B073004") == f"{97 - int('2530718073004') % 97:02d}" == "70"
    assert nir_key("253072A073004") == f"{97 - int('2530719073004') % 97:02d}" == "43"


def test_ins_oids() -> None:
    assert INS_OIDS == (
        "1.2.250.1.213.1.4.8",
        "1.2.250.1.213.1.4.9",
        "1.2.250.1.213.1.4.10",
        "1.2.250.1.213.1.4.11",
    )
    assert ins_system(INS_NIR_OID) == "urn:oid:1.2.250.1.213.1.4.8"
    with pytest.raises(ValueError, match="not an INS"):
        ins_system("1.2.3")


# --- names ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "normal"),
    [
        ("Élodie Dupont-Lefèvre", "ELODIE DUPONT LEFEVRE"),
        ("  ELODIE   DUPONT  LEFEVRE ", "ELODIE DUPONT LEFEVRE"),
        ("d'Artagnan", "D ARTAGNAN"),
        ("D’ARTAGNAN", "D ARTAGNAN"),
        ("Oʼ Brien", "O BRIEN"),
        ("Céline", "CELINE"),
        ("Cœur-de-Lion", "COEUR DE LION"),
        ("Lætitia", "LAETITIA"),
        ("Straße", "STRASSE"),
        ("Søren Łukasz", "SOREN LUKASZ"),
        ("Ñúñez", "NUNEZ"),
        ("Jean--Marie", "JEAN MARIE"),
        ("ﬁlipe", "FILIPE"),  # a typographic ligature (NFKD spells it out)
        ("Μαρία", "ΜΑΡΙΑ"),  # other scripts are kept
        ("-'- ", ""),
    ],
)
def test_normalised_names(name: str, normal: str) -> None:
    assert normalise_name(name) == normal


LATIN = string.ascii_letters + "éèêëàâäîïôöùûüçÉÈÊÀÂÎÏÔÖÙÛÜÇœŒæÆ"
SEPARATORS = st.sampled_from([" ", "-", "'", "’", "  ", " - ", "\t"])


@given(st.text(max_size=40))
def test_normalising_is_idempotent_and_clean(name: str) -> None:
    normal = normalise_name(name)
    assert normalise_name(normal) == normal
    assert normal == normal.strip() and "  " not in normal
    assert all(c == " " or (c.isalpha() and c.upper() == c) for c in normal)


@given(
    st.lists(st.text(alphabet=LATIN, min_size=1, max_size=10), min_size=1, max_size=4), SEPARATORS
)
def test_separators_and_case_do_not_matter(words: list[str], separator: str) -> None:
    spaced = normalise_name(" ".join(words))
    assert normalise_name(separator.join(words)) == spaced
    assert normalise_name(" ".join(words).lower()) == spaced
    assert normalise_name(" ".join(words).upper()) == spaced
    assert spaced.isascii()


# --- pseudonyms -----------------------------------------------------------------------------------
def test_variants_of_one_person_have_one_pseudonym() -> None:
    born = date(1987, 3, 14)
    one = pseudonym(KEY, "Dupont-Lefèvre", "Élodie", born)
    assert one == pseudonym(KEY, "DUPONT LEFEVRE", "ELODIE", born)
    assert one == pseudonym(KEY, "dupont  lefevre", "élodie", born)
    assert len(one) == 64 and int(one, 16) >= 0
    assert one != pseudonym(KEY, "Dupont-Lefèvre", "Élodie", date(1987, 3, 15))
    assert one != pseudonym(bytes(32), "Dupont-Lefèvre", "Élodie", born)


def test_the_encoding_is_the_documented_one() -> None:
    message = pseudonym_message("Dupont-Lefèvre", "Élodie", date(1987, 3, 14))
    assert message == (
        b"kit-pseudonym-v1\x00" + b"\x00\x0eDUPONT LEFEVRE" + b"\x00\x06ELODIE" + b"1987-03-14"
    )
    expected = hmac.new(KEY, message, hashlib.sha256).hexdigest()
    assert pseudonym(KEY, "Dupont-Lefèvre", "Élodie", date(1987, 3, 14)) == expected
    # A frozen vector: a change of algorithm must be a deliberate, versioned one.
    assert (
        expected
        == hmac.new(
            bytes(range(32)),
            b"kit-pseudonym-v1\x00\x00\x0eDUPONT LEFEVRE\x00\x06ELODIE1987-03-14",
            "sha256",
        ).hexdigest()
    )


def test_field_boundaries_are_unambiguous() -> None:
    born = date(2000, 1, 1)
    assert pseudonym(KEY, "AB", "C", born) != pseudonym(KEY, "A", "BC", born)
    assert pseudonym(KEY, "MARIE", "ANNE", born) != pseudonym(KEY, "ANNE", "MARIE", born)


@pytest.mark.parametrize(
    ("key", "last", "first", "message"),
    [(b"short", "A", "B", "at least 16"), (KEY, "-", "B", "with letters"), (KEY, "A", "", "with")],
)
def test_pseudonyms_refuse_what_cannot_work(
    key: bytes, last: str, first: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        pseudonym(key, last, first, date(2000, 1, 1))


@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=40))
def test_the_ascii_path_gives_what_the_unicode_path_gives(name: str) -> None:
    from kit.identity import _UNDECOMPOSED, _is_letter

    decomposed = unicodedata.normalize("NFKD", name.translate(_UNDECOMPOSED))
    letters = "".join(c for c in decomposed if not unicodedata.combining(c))
    kept = "".join(c if _is_letter(c) else " " for c in letters.upper())
    assert normalise_name(name) == " ".join(kept.split())
