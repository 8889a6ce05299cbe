"""The pure rules of Contact Covid, without a database."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contact import rules
from contact.rules import Identity, Level, Status, TimeRules


def test_contagious_window_opens_48h_before_onset() -> None:
    assert rules.contagious_from(date(2020, 10, 20), date(2020, 10, 22)) == date(2020, 10, 18)


def test_contagious_window_of_asymptomatic_case_from_sampling() -> None:
    assert rules.contagious_from(None, date(2020, 10, 22)) == date(2020, 10, 20)
    seven = TimeRules(asymptomatic_before=timedelta(days=7))
    assert rules.contagious_from(None, date(2020, 10, 22), seven) == date(2020, 10, 15)
    with pytest.raises(ValueError):
        rules.contagious_from(None, None)


def test_contact_dates_outside_window_refused() -> None:
    onset, sampled, diagnosis = date(2020, 10, 20), date(2020, 10, 21), date(2020, 10, 22)
    rules.check_contact_date(date(2020, 10, 18), onset, sampled, diagnosis)
    with pytest.raises(ValueError, match="contagious window"):
        rules.check_contact_date(date(2020, 10, 17), onset, sampled, diagnosis)
    with pytest.raises(ValueError, match="isolation"):
        rules.check_contact_date(date(2020, 10, 28), onset, sampled, diagnosis)
    wide = TimeRules(symptomatic_before=timedelta(days=30))
    with pytest.raises(ValueError):  # never more than 14 days before the diagnosis
        rules.check_contact_date(date(2020, 10, 7), onset, sampled, diagnosis, wide)


def test_isolation_end() -> None:
    onset = date(2020, 10, 20)
    assert rules.isolation_until(date(2020, 10, 19), False, onset, None) == date(2020, 10, 26)
    # a household contact: 7 days after the case's own isolation (onset + 7)
    assert rules.isolation_until(date(2020, 10, 19), True, onset, None) == date(2020, 11, 3)
    ten = TimeRules(contact_isolation=timedelta(days=10))
    assert rules.isolation_until(date(2020, 10, 19), False, onset, None, ten) == date(2020, 10, 29)
    assert rules.test_on(date(2020, 10, 19)) == date(2020, 10, 26)


def test_workflow_transitions() -> None:
    rules.check_transition(Status.INITIALISED, Status.VALIDATED)
    rules.check_transition(Status.VALIDATED, Status.CLOSED)
    rules.check_transition(Status.INITIALISED, Status.CLOSED)
    for current, target in [
        (Status.VALIDATED, Status.INITIALISED),
        (Status.CLOSED, Status.VALIDATED),
        (Status.CLOSED, Status.INITIALISED),
        (Status.VALIDATED, Status.VALIDATED),
    ]:
        with pytest.raises(rules.TransitionError):
            rules.check_transition(current, target)


def test_levels_only_go_up() -> None:
    rules.check_level_change(Level.DOCTOR, Level.CPAM, Status.INITIALISED)
    rules.check_level_change(Level.CPAM, Level.ARS, Status.VALIDATED)
    with pytest.raises(rules.TransitionError):
        rules.check_level_change(Level.CPAM, Level.DOCTOR, Status.INITIALISED)
    with pytest.raises(rules.TransitionError):
        rules.check_level_change(Level.DOCTOR, Level.CPAM, Status.CLOSED)


def test_sla_and_queue_order() -> None:
    opened = datetime(2020, 10, 22, 9, tzinfo=UTC)
    due = rules.sla_due(opened)
    assert due == datetime(2020, 10, 23, 9, tzinfo=UTC)
    late = due + timedelta(minutes=1)
    assert rules.is_overdue(due, Status.INITIALISED, Level.CPAM, late)
    assert not rules.is_overdue(due, Status.VALIDATED, Level.CPAM, late)
    assert not rules.is_overdue(due, Status.INITIALISED, Level.CPAM, due)
    earlier_but_on_time = due + timedelta(hours=5)
    keys = sorted(
        [
            (rules.queue_order(earlier_but_on_time, Status.INITIALISED, Level.CPAM, late), "b"),
            (rules.queue_order(due, Status.INITIALISED, Level.CPAM, late), "a"),
        ]
    )
    assert [k[1] for k in keys] == ["a", "b"]


def test_clusters_need_three_cases_within_the_window() -> None:
    school = rules.setting_key("school", "Lycée Victor-Hugo")
    assert school == "school:LYCEE VICTOR HUGO"
    home = rules.setting_key("care_home", "EHPAD Les Lilas")
    found = rules.detect_clusters(
        [
            (1, school, date(2020, 10, 1)),
            (2, school, date(2020, 10, 3)),
            (3, rules.setting_key("school", "LYCEE VICTOR HUGO"), date(2020, 10, 7)),
            (4, home, date(2020, 10, 1)),
            (5, home, date(2020, 10, 9)),  # too far from 4
            (6, home, date(2020, 10, 20)),
        ]
    )
    assert found == [rules.Cluster(school, (1, 2, 3), date(2020, 10, 1), date(2020, 10, 7))]
    assert rules.detect_clusters([(1, home, date(2020, 10, 1))] * 3) == []  # one case thrice
    with pytest.raises(ValueError):
        rules.setting_key("disco", "x")


def test_person_matching() -> None:
    born = date(1985, 5, 1)
    a = Identity("Dupont-Lefèvre", "Élodie", born)
    b = Identity("DUPONT LEFEVRE", "elodie", born)
    assert rules.same_person(a, b)
    assert not rules.same_person(a, Identity("Dupont", "Elodie", born))
    assert not rules.same_person(a, Identity("Dupont-Lefèvre", "Élodie", None))
    nir = "295109912611193"
    with_nir = Identity("Martin", "Anne", born, nir)
    assert rules.same_person(with_nir, Identity("Martinez", "Anne", None, nir))
    other_nir = Identity("Martin", "Anne", born, "185057512345673")
    assert not rules.same_person(with_nir, other_nir)
    known = [(7, Identity("X", "Y", born, nir)), (8, b)]
    assert rules.best_match(Identity("Martin", "Anne", born, nir), known) == 7
    assert rules.best_match(a, known) == 8
    assert rules.best_match(Identity("Nobody", "Here", born), known) is None


def test_nir_cleaning() -> None:
    assert rules.clean_nir("2 95 10 99 126 111 93") == "295109912611193"
    assert rules.clean_nir("253072B07300470") == "253072B07300470"
    assert rules.clean_nir("") is None
    with pytest.raises(ValueError):
        rules.clean_nir("295109912611199")


def test_search_tokens_are_word_prefixes() -> None:
    assert rules.search_tokens("Dupont-Lefèvre", "Élo") == (
        "DUP DUPO DUPON DUPONT LEF LEFE LEFEV LEFEVR LEFEVRE ELO"
    )
    assert rules.search_tokens("Li", "Anna Anna") == "LI ANN ANNA"
    assert rules.query_words(" lefèvre  é ") == ["LEFEVRE", "E"]


def test_record_numbers() -> None:
    assert rules.record_number(42) == "CC00000042"
    assert rules.parse_record_number(" cc00000042 ") == 42
    assert rules.parse_record_number("CC42") is None


@given(st.binary(min_size=10, max_size=10))
def test_codes_round_trip_and_catch_one_typo(raw: bytes) -> None:
    code = rules.make_code(raw)
    assert rules.normalise_code(rules.show_code(code).lower()) == code
    for position in range(11):
        for wrong in rules.CODE_ALPHABET:
            if wrong != code[position]:
                typo = code[:position] + wrong + code[position + 1 :]
                assert rules.normalise_code(typo) is None


def test_phone_numbers() -> None:
    assert rules.normalise_phone("06 12 34 56 78") == "+33612345678"
    assert rules.normalise_phone("+33 6 12 34 56 78") == "+33612345678"
    assert rules.normalise_phone("0032 470 12 34 56") == "+32470123456"
    assert rules.normalise_phone(None) is None
    with pytest.raises(ValueError):
        rules.normalise_phone("12")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3)
    ),
    max_leaves=10,
)
patient_fields = st.fixed_dictionaries(
    {},
    optional={
        k: json_values | st.text(max_size=40)
        for k in (
            "nir",
            "last_name",
            "first_name",
            "birth_date",
            "sex",
            "postcode",
            "phone",
            "email",
        )
    },
)


@given(patient_fields, st.text(max_size=5))
def test_any_sidep_patient_block_reads_or_is_unusable(patient: dict[str, object], dep: str) -> None:
    """Whatever SI-DEP's ``patient`` holds, it reads as a person or as unusable, never raises
    (a raising event would hold the feed back)."""
    from contact.service import _patient_input

    person = _patient_input(patient, dep)
    if person is not None:
        assert person.last_name.strip() and person.first_name.strip()
        assert person.sex in ("M", "F", "U")
        assert person.nir is None or rules.clean_nir(person.nir) == person.nir
