"""Mes Conseils Covid's rules, evaluated in Python exactly as the page's JavaScript does.

The rules are data (``data/advice-rules.json``): questions, derived values, named conditions,
and rules grouped in sections, each rule citing its sources and the date it applies from. The
page (``static/advice.js``) and this module implement one small expression language, so that
anyone may reuse the rules; ``data/advice-cases.json`` holds cases both must answer alike
(``robert citizens advice check``, and the browser test runs them in Chromium).

The language, for both implementations:

- a *value* is a number, ``{"fact": name}`` (an answer or a derived value; missing is null),
  ``{"div": [a, b]}`` or ``{"mul": [a, b]}`` (null if an operand is null, or b is 0);
- a *condition* is ``{"all": [...]}`` (true when empty), ``{"any": [...]}``, ``{"not": c}``,
  ``{"ref": name}`` (a named condition), or a test ``{"op": [subject, literal]}`` where the
  subject is a fact name or a value, and op is ``is`` (equal), ``in`` (one of a list),
  ``has`` (a multiple answer contains), ``hasAny`` (contains one of), ``gt``, ``gte``, ``lt``,
  ``lte`` (numbers). A test on a missing answer is false.

A section in ``first`` mode keeps only its first matching rule; in ``all`` mode, every one.
The result is the ordered list of matching rule ids; nothing is sent anywhere.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent / "data"
RULES = DATA / "advice-rules.json"
CASES = DATA / "advice-cases.json"

Answers = Mapping[str, Any]
"""A person's answers: question id to a number, a boolean, a string or a list of strings."""

COMPARISONS = frozenset({"is", "in", "has", "hasAny", "gt", "gte", "lt", "lte"})


class RulesError(ValueError):
    """A rules document that does not follow the format; the message says where."""


class AnswerError(ValueError):
    """An answer that does not fit its question; the message names it."""


@dataclass(frozen=True, slots=True)
class Advice:
    """The outcome: the matching rules in order, and the first one of the first section (the
    person's situation)."""

    version: str
    rule_ids: tuple[str, ...]

    @property
    def situation(self) -> str | None:
        """The situation rule (the first rule of the first section), if any matched."""
        return self.rule_ids[0] if self.rule_ids else None

    def as_json(self) -> dict[str, Any]:
        """What the shared test cases compare: ``{"version", "advice": [rule ids]}``."""
        return {"version": self.version, "advice": list(self.rule_ids)}


class Rules:
    """A validated rules document."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        self.document = document
        self.version: str = str(document["version"])
        self.questions: dict[str, Mapping[str, Any]] = {q["id"]: q for q in document["questions"]}
        self.derived: Mapping[str, Any] = document.get("derived", {})
        self.conditions: Mapping[str, Any] = document.get("conditions", {})
        self.sections: list[Mapping[str, Any]] = list(document["sections"])
        self.rules: list[Mapping[str, Any]] = list(document["rules"])
        self.sources: Mapping[str, Mapping[str, Any]] = document["sources"]
        self._check()

    @classmethod
    def load(cls, path: Path = RULES) -> Rules:
        """Read and check a rules file."""
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise RulesError(f"{path}: {exc}") from None
        try:
            return cls(document)
        except (KeyError, TypeError) as exc:
            raise RulesError(f"{path}: missing or malformed {exc}") from None

    # --- checking the document -------------------------------------------------------------
    def _check(self) -> None:
        section_ids = {s["id"] for s in self.sections}
        seen: set[str] = set()
        for rule in self.rules:
            rid = rule["id"]
            if rid in seen:
                raise RulesError(f"rule {rid} appears twice")
            seen.add(rid)
            if rule["section"] not in section_ids:
                raise RulesError(f"rule {rid}: unknown section {rule['section']!r}")
            if not rule.get("sources"):
                raise RulesError(f"rule {rid} cites no source")
            for source in rule["sources"]:
                if source not in self.sources:
                    raise RulesError(f"rule {rid}: unknown source {source!r}")
            checked = any(self.sources[s].get("checked") for s in rule["sources"])
            if not checked and rule.get("assumption") is not True:
                raise RulesError(f"rule {rid}: no checked source, so it must be an assumption")
            if not {"fr", "en"} <= set(rule["text"]):
                raise RulesError(f"rule {rid}: text needs fr and en")
            self._check_condition(rule["when"], f"rule {rid}")
        for name, condition in self.conditions.items():
            self._check_condition(condition, f"condition {name}")

    def _check_condition(self, node: Any, where: str) -> None:
        if not isinstance(node, dict) or len(node) != 1:
            raise RulesError(f"{where}: a condition is an object with one key")
        [(op, arg)] = node.items()
        if op in ("all", "any"):
            for item in arg:
                self._check_condition(item, where)
        elif op == "not":
            self._check_condition(arg, where)
        elif op == "ref":
            if arg not in self.conditions:
                raise RulesError(f"{where}: unknown condition {arg!r}")
        elif op in COMPARISONS:
            if not isinstance(arg, list) or len(arg) != 2:
                raise RulesError(f"{where}: {op} takes [subject, literal]")
            subject = arg[0]
            if isinstance(subject, str) and (
                subject not in self.questions and subject not in self.derived
            ):
                raise RulesError(f"{where}: unknown fact {subject!r}")
        else:
            raise RulesError(f"{where}: unknown operator {op!r}")

    # --- answers ---------------------------------------------------------------------------
    def check_answers(self, answers: Answers) -> dict[str, Any]:
        """The answers with unknown questions refused and each value checked against its
        question (``AnswerError`` naming the first wrong one)."""
        clean: dict[str, Any] = {}
        for qid, value in answers.items():
            question = self.questions.get(qid)
            if question is None:
                raise AnswerError(f"unknown question {qid!r}")
            if value is None:
                continue
            kind = question["type"]
            options = {o["value"] for o in question.get("options", ())}
            if kind == "integer":
                if isinstance(value, bool) or not isinstance(value, int):
                    raise AnswerError(f"{qid} must be a whole number")
                if not question.get("min", -math.inf) <= value <= question.get("max", math.inf):
                    raise AnswerError(f"{qid} must be {question['min']} to {question['max']}")
            elif kind == "boolean":
                if not isinstance(value, bool):
                    raise AnswerError(f"{qid} must be true or false")
            elif kind == "choice":
                if value not in options:
                    raise AnswerError(f"{qid} must be one of {', '.join(sorted(options))}")
            elif kind == "multi":
                if not isinstance(value, list) or any(v not in options for v in value):
                    raise AnswerError(f"{qid} must be a list of {', '.join(sorted(options))}")
            elif kind == "departement" and not (isinstance(value, str) and 2 <= len(value) <= 3):
                raise AnswerError(f"{qid} must be a département code like 75, 2A or 974")
            clean[qid] = value
        for question in self.questions.values():
            if question.get("required") and question["id"] not in clean:
                raise AnswerError(f"{question['id']} is required")
        return clean

    # --- evaluation ------------------------------------------------------------------------
    def evaluate(self, answers: Answers) -> Advice:
        """The advice for ``answers`` (assumed checked: see ``check_answers``)."""
        facts: dict[str, Any] = dict(answers)
        for name, expression in self.derived.items():
            facts[name] = _value(expression, facts)
        matched: list[str] = []
        for section in self.sections:
            for rule in self.rules:
                if rule["section"] != section["id"]:
                    continue
                if self._holds(rule["when"], facts):
                    matched.append(rule["id"])
                    if section["mode"] == "first":
                        break
        return Advice(self.version, tuple(matched))

    def _holds(self, node: Mapping[str, Any], facts: Mapping[str, Any]) -> bool:
        [(op, arg)] = node.items()
        if op == "all":
            return all(self._holds(c, facts) for c in arg)
        if op == "any":
            return any(self._holds(c, facts) for c in arg)
        if op == "not":
            return not self._holds(arg, facts)
        if op == "ref":
            return self._holds(self.conditions[arg], facts)
        subject, literal = arg
        value = facts.get(subject) if isinstance(subject, str) else _value(subject, facts)
        return _compare(op, value, literal)


def _value(expression: Any, facts: Mapping[str, Any]) -> Any:
    """A value expression's value (None when undefined)."""
    if isinstance(expression, bool):
        return expression
    if isinstance(expression, int | float):
        return expression
    if "fact" in expression:
        return facts.get(expression["fact"])
    op, (left, right) = next(iter(expression.items()))
    a, b = _value(left, facts), _value(right, facts)
    if not _is_number(a) or not _is_number(b):
        return None
    if op == "mul":
        return a * b
    if op == "div":
        return None if b == 0 else a / b
    raise RulesError(f"unknown value operator {op!r}")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _same(a: Any, b: Any) -> bool:
    """JavaScript's ``===`` on JSON values: ``true`` is not ``1``, ``1`` is ``1.0``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    return bool(a == b)


def _compare(op: str, value: Any, literal: Any) -> bool:
    if value is None:
        return False
    if op == "is":
        return _same(value, literal)
    if op == "in":
        return any(_same(value, item) for item in literal)
    if op == "has":
        return isinstance(value, list) and any(_same(v, literal) for v in value)
    if op == "hasAny":
        return isinstance(value, list) and any(_same(v, item) for v in value for item in literal)
    if not _is_number(value):
        return False
    if op == "gt":
        return bool(value > literal)
    if op == "gte":
        return bool(value >= literal)
    if op == "lt":
        return bool(value < literal)
    return bool(value <= literal)  # lte


@cache
def shipped_rules() -> Rules:
    """The rules shipped with the package (read and checked once)."""
    return Rules.load()


def load_cases(path: Path = CASES) -> list[dict[str, Any]]:
    """The shared test cases: ``[{"name", "answers", "advice": [rule ids]}]``."""
    cases: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))["cases"]
    return cases


def run_cases(rules: Rules, cases: Sequence[Mapping[str, Any]]) -> list[str]:
    """The cases whose advice differs from what they expect, one line each."""
    failures = []
    for case in cases:
        got = list(rules.evaluate(rules.check_answers(case["answers"])).rule_ids)
        if got != case["advice"]:
            failures.append(f"{case['name']}: expected {case['advice']}, got {got}")
    return failures
