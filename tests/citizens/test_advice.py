"""The advice rules in Python: the document's checks, the shared cases, the commands."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from citizens.advice import (
    AnswerError,
    Rules,
    RulesError,
    load_cases,
    run_cases,
    shipped_rules,
)
from cli.main import main


def test_the_shared_cases_pass_in_python() -> None:
    cases = load_cases()
    assert len(cases) >= 15
    assert run_cases(shipped_rules(), cases) == []


def test_the_cases_are_for_this_version_of_the_rules() -> None:
    document = json.loads(
        (Path(__file__).parents[2] / "citizens/data/advice-cases.json").read_text()
    )
    assert document["rules_version"] == shipped_rules().version


def test_a_wrong_expectation_fails() -> None:
    case = copy.deepcopy(load_cases()[0])
    case["advice"] = case["advice"][1:]
    [failure] = run_cases(shipped_rules(), [case])
    assert case["name"] in failure


def test_every_rule_cites_dated_sources_and_unchecked_ones_are_assumptions() -> None:
    rules = shipped_rules()
    for rule in rules.rules:
        sources = [rules.sources[s] for s in rule["sources"]]
        assert all(len(s["date"]) >= 7 for s in sources)
        if not any(s["checked"] for s in sources):
            assert rule["assumption"] is True, rule["id"]
    assert any(r["assumption"] for r in rules.rules)  # honesty: some are not checked here


def test_a_rule_without_a_checked_source_must_say_it_is_an_assumption() -> None:
    document = copy.deepcopy(shipped_rules().document)
    [rule] = [r for r in document["rules"] if r["id"] == "local-lockdown"]
    rule["assumption"] = False
    with pytest.raises(RulesError, match="must be an assumption"):
        Rules(document)


def test_unknown_facts_and_operators_are_refused() -> None:
    document = copy.deepcopy(shipped_rules().document)
    document["rules"][0]["when"] = {"gte": ["shoe_size", 40]}
    with pytest.raises(RulesError, match="unknown fact"):
        Rules(document)
    document["rules"][0]["when"] = {"near": ["age", 40]}
    with pytest.raises(RulesError, match="unknown operator"):
        Rules(document)


@pytest.mark.parametrize(
    ("answers", "message"),
    [
        ({"test": "none", "contact": "none"}, "age is required"),
        ({"age": 300, "test": "none", "contact": "none"}, "age must be"),
        ({"age": True, "test": "none", "contact": "none"}, "whole number"),
        ({"age": 30, "test": "maybe", "contact": "none"}, "test must be one of"),
        ({"age": 30, "test": "none", "contact": "none", "symptoms": ["hiccups"]}, "symptoms"),
        ({"age": 30, "test": "none", "contact": "none", "shoe": 42}, "unknown question"),
    ],
)
def test_answers_are_checked(answers: dict[str, object], message: str) -> None:
    with pytest.raises(AnswerError, match=message):
        shipped_rules().check_answers(answers)


def test_robert_advice_check_runs_the_cases(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["advice", "check"]) == 0
    assert "21 passed, 0 failed" in capsys.readouterr().out


def test_robert_advice_check_fails_on_a_wrong_case(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cases = load_cases()
    cases[1]["advice"] = ["situation-low-risk"]
    path = tmp_path / "cases.json"
    path.write_text(json.dumps({"cases": cases}))
    assert main(["citizens", "advice", "check", "--cases", str(path)]) == 1
    assert "1 failed" in capsys.readouterr().out


def test_robert_advice_for_flags(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["advice", "for", "--age", "52", "--test", "none", "--contact", "household", "--json"]
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["advice"][:2] == [
        "situation-contact",
        "isolation-contact",
    ]
    assert main(["advice", "for", "--age", "30", "--test", "none", "--contact", "none",
                 "--lang", "en"]) == 0  # fmt: skip
    assert "Keep applying the barrier measures" in capsys.readouterr().out


def test_robert_advice_for_refuses_bad_answers_in_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["advice", "for", "--age", "old", "--test", "none", "--contact", "none"]) == 1
    assert capsys.readouterr().err.strip() == "robert: --age must be a whole number"


def test_robert_advice_export_writes_the_static_site(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = tmp_path / "site"
    assert main(["advice", "export", str(site), "--service-url", "https://robert.example.org"]) == 0
    assert sorted(p.name for p in site.iterdir()) == [
        "advice-cases.json", "advice-rules.json", "en.html", "index.html",
    ]  # fmt: skip
    french = (site / "index.html").read_text(encoding="utf-8")
    assert '<html lang="fr">' in french and "Voir mes conseils" in french
    assert 'http-equiv="Content-Security-Policy"' in french and 'nonce="' not in french
    assert "https://robert.example.org/citizens/sites/?lang=fr" in french
    assert 'href="advice-rules.json"' in french and 'href="en.html"' in french
    assert main(["advice", "export", str(site), "--service-url", "robert.example.org"]) == 1
    assert capsys.readouterr().err.strip().endswith("must start with https:// or http://")


def test_antigen_tests_follow_the_october_2020_doctrine() -> None:
    """HAS 8 Oct 2020 and the arrêté of 16 Oct 2020: the pharmacy antigen test is for
    symptomatic people under 65 without risk factors (within 4 days); the others, RT-PCR."""
    rules = shipped_rules()
    by_id = {r["id"]: r for r in rules.document["rules"]}
    for rid in ("testing-symptoms", "testing-symptoms-fragile"):
        assert {"has-antigen-2020-10-08", "arrete-2020-10-16"} <= set(by_id[rid]["sources"])
        assert by_id[rid]["since"] == "2020-10-16"
    assert rules.sources["has-antigen-2020-10-08"]["date"] == "2020-10-08"
    assert rules.sources["arrete-2020-10-16"]["date"] == "2020-10-16"
    assert "RT-PCR" in by_id["testing-symptoms-fragile"]["text"]["fr"]

    def testing(age: int, **more: object) -> list[str]:
        answers = {"age": age, "symptoms": ["cough"], "test": "none", "contact": "none", **more}
        advice = rules.evaluate(rules.check_answers(answers)).rule_ids
        return [r for r in advice if r.startswith("testing-symptoms")]

    assert testing(64) == ["testing-symptoms"]
    assert testing(65) == testing(90) == ["testing-symptoms-fragile"]
    assert testing(30, conditions=["respiratory"]) == ["testing-symptoms-fragile"]
    assert testing(30, pregnant_third_trimester=True) == ["testing-symptoms-fragile"]
