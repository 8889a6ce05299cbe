"""``robert citizens ...`` and ``robert advice ...``: the citizen services' commands.

- ``robert citizens serve``: run the service alone;
- ``robert advice for --age 70 --symptoms fever,cough ...``: the advice for answers given as
  flags (one per question of the rules) or as a JSON file (``--answers``);
- ``robert advice check``: run the shared test cases through the Python rules engine (the
  browser test runs the same cases through the page's JavaScript);
- ``robert advice export DIR``: the advice page as a static site (``citizens.export``);
- ``robert citizens sites check FILE``: what a sites file would give, without serving it;
- ``robert citizens sites publish FILE``: check it, then replace the served file atomically
  (the running service swaps its sites at its next check);
- ``robert citizens directory seed``: load the sample directory entries, published;
- ``robert citizens users|apikeys``: the moderators' accounts (the kit's commands).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from citizens.settings import DATA, Settings
from kit.cli import CommandError, Listener, serve_app, setup_logging, writable_directory

log = logging.getLogger("citizens")
SAMPLE_DIRECTORY = DATA / "directory-sample.json"


def with_settings(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the service's settings to ``parser``, after the command's own options."""
    Settings.add_arguments(parser)
    return parser


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the citizen services alone."""
    from citizens.app import LINKS, standalone_app

    settings = Settings.from_sources(args)
    setup_logging(settings.log_level)
    log.info("settings: %s", settings.describe())
    if not settings.database:
        writable_directory(settings.data_path, "data directory")

    async def serve() -> None:
        app = standalone_app(settings)
        await serve_app(app, Listener(settings.host, settings.port, LINKS), "citizen services")

    asyncio.run(serve())
    return 0


# --- advice ------------------------------------------------------------------------------------
def _flag(question_id: str) -> str:
    return "--" + question_id.replace("_", "-")


def _answer_from_flag(question: dict[str, Any], text: str) -> Any:
    kind = question["type"]
    if kind == "integer":
        try:
            return int(text)
        except ValueError:
            raise CommandError(f"{_flag(question['id'])} must be a whole number") from None
    if kind == "boolean":
        if text not in ("yes", "no"):
            raise CommandError(f"{_flag(question['id'])} must be yes or no")
        return text == "yes"
    if kind == "multi":
        return [v.strip() for v in text.split(",") if v.strip()]
    return text


def cmd_advice_for(args: argparse.Namespace) -> int:
    """Print the advice for the answers given."""
    from citizens.advice import AnswerError, shipped_rules

    rules = shipped_rules()
    answers: dict[str, Any] = {}
    if args.answers:
        try:
            loaded = json.loads(Path(args.answers).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise CommandError(f"--answers {args.answers}: {exc}") from None
        if not isinstance(loaded, dict):
            raise CommandError("--answers must hold a JSON object of question ids")
        answers.update(loaded)
    for qid, question in rules.questions.items():
        value = getattr(args, "q_" + qid)
        if value is not None:
            answers[qid] = _answer_from_flag(dict(question), value)
    try:
        advice = rules.evaluate(rules.check_answers(answers))
    except AnswerError as exc:
        raise CommandError(str(exc)) from None
    if args.json:
        print(json.dumps(advice.as_json(), ensure_ascii=False))
        return 0
    by_id = {r["id"]: r for r in rules.rules}
    titles = {s["id"]: s["title"][args.lang] for s in rules.sections}
    section = None
    for rid in advice.rule_ids:
        rule = by_id[rid]
        if rule["section"] != section:
            section = rule["section"]
            print(f"\n{titles[section]}")
        mark = " [à vérifier]" if rule.get("assumption") and args.lang == "fr" else (
            " [to be checked]" if rule.get("assumption") else "")  # fmt: skip
        print(f"- {rule['text'][args.lang]} ({rid}{mark})")
    print(f"\nrules {advice.version}")
    return 0


def cmd_advice_check(args: argparse.Namespace) -> int:
    """Run the shared test cases; exit 1 if any gives other advice than expected."""
    from citizens.advice import CASES, AnswerError, Rules, load_cases, run_cases, shipped_rules

    rules = Rules.load(Path(args.rules)) if args.rules else shipped_rules()
    cases = load_cases(Path(args.cases) if args.cases else CASES)
    try:
        failures = run_cases(rules, cases)
    except AnswerError as exc:
        raise CommandError(f"a case's answers do not fit the rules: {exc}") from None
    for failure in failures:
        print(f"FAIL {failure}")
    print(f"{len(cases) - len(failures)} passed, {len(failures)} failed")
    return 1 if failures else 0


def cmd_advice_export(args: argparse.Namespace) -> int:
    """Write the advice page as a static site (two languages, the rules, the cases)."""
    from citizens.export import export_advice

    service = args.service_url.rstrip("/")
    if not service.startswith(("https://", "http://")):
        raise CommandError("--service-url must start with https:// or http://")
    directory = Path(args.directory)
    try:
        written = export_advice(directory, f"{service}/citizens/sites/")
    except OSError as exc:
        raise CommandError(f"{directory}: {exc.strerror or exc}") from None
    for path in written:
        print(path)
    return 0


# --- sites -------------------------------------------------------------------------------------
SITES_FILE_HELP = (
    "a CSV file of test sites, UTF-8, ';' or ',' separated: the layout of citizens/sites.py "
    "(id;name;address;postcode;commune;lat;lon;kinds;walk_in...) or Santé.fr's public one "
    "(ID,id_ej,finess,rs,adresse,...)"
)


def _read_sites(path: str) -> Any:
    from citizens.sites import SiteIndex, SitesFileError

    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise CommandError(f"{path}: {exc.strerror or exc}") from None
    try:
        return data, SiteIndex.from_file_bytes(data)
    except SitesFileError as exc:
        raise CommandError(f"{path}: {exc}") from None


def cmd_sites_check(args: argparse.Namespace) -> int:
    """Say what a sites file would give: its sites, its skipped rows."""
    _, index = _read_sites(args.file)
    for bad in index.bad_rows:
        print(f"line {bad.line}: {bad.reason}")
    print(f"{len(index.sites)} sites, {len(index.bad_rows)} rows skipped, sha256 {index.version}")
    return 0


def cmd_sites_publish(args: argparse.Namespace) -> int:
    """Check a sites file, then put it in place of the served one in one rename."""
    data, index = _read_sites(args.file)
    settings = Settings.from_sources(args)
    if not settings.sites_file:
        raise CommandError(
            "set --sites-file (CITIZENS_SITES_FILE): the shipped file is not replaced"
        )
    target = Path(settings.sites_file)
    writable_directory(target.parent, "sites file directory")
    with tempfile.NamedTemporaryFile(dir=target.parent, delete=False, suffix=".tmp") as tmp:
        tmp.write(data)
        tmp.flush()
        os.fsync(tmp.fileno())
    os.replace(tmp.name, target)  # atomic: readers see the old file or the new one
    print(f"{target}: {len(index.sites)} sites, sha256 {index.version}")
    return 0


# --- directory ---------------------------------------------------------------------------------
def cmd_directory_seed(args: argparse.Namespace) -> int:
    """Load the sample entries (or a JSON file of declarations), published."""
    from citizens.app import open_accounts
    from citizens.directory import InvalidDeclaration, parse_declaration
    from citizens.store import DirectoryStore

    path = Path(args.file) if args.file else SAMPLE_DIRECTORY
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))["services"]
        declarations = [parse_declaration(item) for item in raw]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise CommandError(f"{path}: {exc}") from None
    except InvalidDeclaration as exc:
        raise CommandError(f"{path}: {exc}") from None
    settings = Settings.from_sources(args)
    if not settings.database:
        writable_directory(settings.data_path, "data directory")

    async def job() -> list[int]:
        accounts = open_accounts(settings)
        store = DirectoryStore(accounts.db, accounts.audit)
        await store.open()
        try:
            return await store.submit_many(declarations, publish=True)
        finally:
            await store.close()

    ids = asyncio.run(job())
    print(f"{len(ids)} entries published")
    return 0


# --- assembly ----------------------------------------------------------------------------------
def _add_advice(sub: Any) -> None:
    from citizens.advice import shipped_rules

    rules = shipped_rules()
    given = sub.add_parser(
        "for",
        help="the advice for answers given as flags or a JSON file",
        description="Compute the advice of Mes Conseils Covid for the answers given, with the "
        "same rules as the page. Multiple answers are comma-separated.",
    )
    for qid, question in rules.questions.items():
        options = [o["value"] for o in question.get("options", ())]
        hint = {
            "integer": f"{question.get('min')} to {question.get('max')}",
            "boolean": "yes or no",
            "departement": "a département code (75, 2A, 974)",
            "multi": "comma-separated: " + ", ".join(options),
            "choice": "one of: " + ", ".join(options),
        }[question["type"]]
        given.add_argument(_flag(qid), dest="q_" + qid, metavar="VALUE",
                           help=f"{question['text']['en']} ({hint})")  # fmt: skip
    given.add_argument("--answers", metavar="FILE", help="answers as a JSON object")
    given.add_argument("--lang", choices=("fr", "en"), default="fr")
    given.add_argument("--json", action="store_true", help="print the rule ids as JSON")
    given.set_defaults(func=cmd_advice_for)
    check = sub.add_parser("check", help="run the shared test cases through the rules")
    check.add_argument("--cases", metavar="FILE", help="cases file (default: the shipped one)")
    check.add_argument("--rules", metavar="FILE", help="rules file (default: the shipped one)")
    check.set_defaults(func=cmd_advice_check)
    export = sub.add_parser(
        "export",
        help="write the advice page as a static site (HTML, rules, cases)",
        description="Write Mes Conseils Covid as static files any web server can serve: "
        "index.html (French), en.html (English), the rules and their test cases.",
    )
    export.add_argument("directory")
    export.add_argument(
        "--service-url",
        default="http://127.0.0.1:8088",
        help="where the citizen services run, for the link to the test sites "
        "(default: %(default)s)",
    )
    export.set_defaults(func=cmd_advice_export)


def add_subcommands(subparsers: Any) -> None:
    """Add ``citizens`` and ``advice`` to the ``robert`` command."""
    from citizens.app import open_accounts
    from citizens.directory_web import MODERATOR
    from citizens.store import MIGRATIONS
    from kit.auth.commands import Roles, add_account_commands

    top = subparsers.add_parser(
        "citizens",
        help="services for citizens: advice, test sites, e-health directory",
        description="Mes Conseils Covid, the map of test sites and the directory of e-health "
        "tools, served under /citizens/.",
    )
    sub = top.add_subparsers(dest="citizens_command", required=True, metavar="COMMAND")
    serve = with_settings(sub.add_parser("serve", help="run the citizen services alone"))
    serve.set_defaults(func=cmd_serve)

    advice = sub.add_parser("advice", help="Mes Conseils Covid's rules from the command line")
    _add_advice(advice.add_subparsers(dest="advice_command", required=True, metavar="COMMAND"))

    sites = sub.add_parser("sites", help="test-site files")
    ssub = sites.add_subparsers(dest="sites_command", required=True, metavar="COMMAND")
    check = ssub.add_parser("check", help="what a sites file would give, without serving it")
    check.add_argument("file", help=SITES_FILE_HELP)
    check.set_defaults(func=cmd_sites_check)
    publish = ssub.add_parser("publish", help="check a sites file, then serve it (atomic swap)")
    publish.add_argument("file", help=SITES_FILE_HELP + "; copied to --sites-file")
    with_settings(publish).set_defaults(func=cmd_sites_publish)

    directory = sub.add_parser("directory", help="the e-health directory")
    dsub = directory.add_subparsers(dest="directory_command", required=True, metavar="COMMAND")
    seed = dsub.add_parser("seed", help="load declarations (default: the samples), published")
    seed.add_argument("--file", help='JSON {"services": [declaration, ...]}')
    with_settings(seed).set_defaults(func=cmd_directory_seed)

    add_account_commands(
        sub,
        lambda args: open_accounts(Settings.from_sources(args)),
        configure=with_settings,
        migrations=[MIGRATIONS],
        roles=Roles(users={MODERATOR}, keys=()),
    )

    short = subparsers.add_parser(
        "advice", help="Mes Conseils Covid's rules (same as 'robert citizens advice')"
    )
    _add_advice(short.add_subparsers(dest="advice_command", required=True, metavar="COMMAND"))
