"""The `ledger` console script, run for real: a subprocess on a real SQLite file or PostgreSQL
database, checked through the ledger's own aggregates afterwards."""

from __future__ import annotations

import base64
import datetime
import json
import os
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path

import pytest

from domain.members import Member
from domain.organizations import Deployment, Organization
from scripts.demo_data import DEMO_YEAR, build_plan
from scripts.demo_summary import summarize
from service.application import Ledger
from service.commands import FoundOrganization
from service.tokens import Tokens
from storage.keys import create_key_file
from storage.settings import Settings
from tests.conftest import Backend

SCALE = "0.002"
SEED = "5"
LEDGER = Path(sys.executable).with_name("ledger")


def run_ledger(args: list[str], env: dict[str, str], cwd: Path, timeout_s: int = 300):
    command = [str(LEDGER)] if LEDGER.exists() else [sys.executable, "-m", "scripts.cli"]
    return subprocess.run(
        [*command, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout_s
    )


def ledger_env(url: str, key_file: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    env.update({"LEDGER_DATABASE_URL": url, "LEDGER_KEY_FILE": str(key_file), "COLUMNS": "160"})
    return env


def assert_one_line_failure(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode != 0, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("ledger: error: ")
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def summary_lines(stdout: str) -> list[str]:
    """The summary tables without the lines that carry timings."""
    start = stdout.index("组织 organisations")
    return [line for line in stdout[start:].splitlines() if not line.startswith("summary read")]


@pytest.fixture
def store(backend: Backend, tmp_path: Path):
    """A fresh store on each backend (a new SQLite file, or a PostgreSQL database made by
    create_pg_database and dropped afterwards), and the environment that points `ledger` at it."""
    key_file = tmp_path / "ledger.key"
    settings = Settings(database_url=backend.url, key_file=key_file)
    return settings, ledger_env(backend.url, key_file)


def test_demo_loads_a_deployment_through_the_application(store, tmp_path: Path) -> None:
    settings, env = store
    result = run_ledger(["demo", "--scale", SCALE, "--seed", SEED], env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "会员总数 on the roll" in result.stdout
    assert "102 银行存款 bank deposits" in result.stdout
    assert "commands/s" in result.stdout

    plan = build_plan("county", float(SCALE), int(SEED))
    ledger = Ledger(settings)
    try:
        root_code = ledger.repository.get(Deployment.ID).root_code
        assert root_code == plan.root_code
        assert ledger.get_organization(root_code)["name"] == "杭州市西湖区总工会"
        summary = summarize(ledger)
        planned_orgs = Counter(o.level for o in plan.organizations)
        planned_orgs.update(o.level for o in plan.in_year_organizations.values())
        assert summary.organizations == planned_orgs
        # Everyone in the plan joined once (a rejoin is the same person's record).
        assert sum(summary.members.values()) == plan.member_count
        exits = sum(1 for s in plan.stories if s.kind == "exit")
        rejoins = sum(1 for s in plan.stories if s.kind == "rejoin")
        assert summary.members["left"] == exits - rejoins
        assert summary.members["transfer_pending"] == 1
        assert summary.members["retained"] >= 1
        assert summary.vouchers["reversal"] == summary.reversed_vouchers == 1
        assert summary.vouchers["founding_reserve_release"] > 0
        assert summary.vouchers["dues"] > 0 and summary.vouchers["levy"] > 0
        # The registers were opened before they were paid from, and some files reviewed.
        assert summary.hardship_files["open"] > 0 and summary.hardship_reviews > 0
        assert sum(summary.hardship_categories.values()) == summary.hardship_files["open"]
        # Every organisation's books balance, and the year is closed (年终结账): December
        # closed, and no income or expenditure balance left at the end of the year.
        assert summary.vouchers["year_end"] > 0
        for code in [o.code for o in plan.organizations] + list(plan.in_year_organizations):
            book = ledger.get_book(code)
            if book is not None:
                assert sum(book.balances.values()) == 0, code
                assert book.bank_balance().fen >= 0, code
                assert book.results_through(DEMO_YEAR) == {}, code
                assert book.last_closed is not None and str(book.last_closed) == f"{DEMO_YEAR}-12"
        root_book = ledger.get_book(root_code)
        assert root_book.closed_months == [f"{DEMO_YEAR}-{m:02d}" for m in range(1, 13)]
        # The events name the command line as their actor.
        member = ledger.repository.get(ledger.member_id_for(plan.people[0].id_number))
        assert isinstance(member, Member)
        first_event = next(iter(ledger.repository.event_store.get(member.id)))
        assert first_event.actor == "cli:demo"
        org = ledger.repository.get(Organization.id_for(plan.root_code))
        assert org.level == "county" and org.region_code == "330106"
        # Personal data never reaches the store in the clear.
        stored = b"".join(n.state for n in ledger.recorder.select_notifications(1, 10**7))
        if settings.database_url.startswith("sqlite"):
            stored += b"".join(p.read_bytes() for p in tmp_path.glob("*.sqlite*"))
        for person in plan.people[:: max(1, len(plan.people) // 60)]:
            assert person.id_number.encode() not in stored
            assert person.name.encode("utf-8") not in stored
            assert person.mobile is None or person.mobile.encode() not in stored
    finally:
        ledger.close()

    # A second load is refused in one line; the summary reads the loaded store as it was.
    again = run_ledger(["demo", "--scale", SCALE], env, tmp_path)
    assert again.returncode == 1
    assert_one_line_failure(again, "already holds a deployment")
    summary = run_ledger(["summary"], env, tmp_path)
    assert summary.returncode == 0, summary.stderr
    assert summary_lines(summary.stdout) == summary_lines(result.stdout)
    assert "在档 open hardship files" in summary.stdout and "劳模 model workers" in summary.stdout
    # The read models, registers included, equal a rebuild from the events after the
    # year-end close.
    check = run_ledger(["rebuild", "--check"], env, tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "hardship_files" in check.stderr + check.stdout
    assert "0 differing rows" in check.stdout


def test_demo_is_deterministic_for_a_seed(tmp_path: Path) -> None:
    outputs = []
    for name in ("a", "b"):
        folder = tmp_path / name
        folder.mkdir()
        env = ledger_env(f"sqlite:///{folder / 'ledger.sqlite'}", folder / "ledger.key")
        result = run_ledger(["demo", "--scale", SCALE, "--seed", "11"], env, folder)
        assert result.returncode == 0, result.stderr
        outputs.append(summary_lines(result.stdout))
    assert outputs[0] == outputs[1]


def test_summary_of_an_empty_store_fails_in_one_line(tmp_path: Path) -> None:
    env = ledger_env(f"sqlite:///{tmp_path / 'ledger.sqlite'}", tmp_path / "ledger.key")
    result = run_ledger(["summary"], env, tmp_path)
    assert result.returncode == 1
    assert_one_line_failure(result, "no deployment")


def test_a_store_read_with_another_key_fails_in_one_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    writer = Ledger(Settings(database_url=url, key_file=tmp_path / "a.key"))
    try:
        plan = build_plan("county", float(SCALE), int(SEED))
        root = plan.organizations[0]
        writer.execute(
            FoundOrganization(
                code=root.code,
                name=root.name,
                level=root.level,
                parent_code=None,
                region_code=root.region_code,
                founded_on=root.founded_on.isoformat(),
            )
        )
    finally:
        writer.close()
    other = tmp_path / "other.key"
    create_key_file(other, 32)
    result = run_ledger(["summary"], ledger_env(url, other), tmp_path)
    assert result.returncode == 1
    assert_one_line_failure(
        result, f"the encryption key from the key file {other} is not the key of the store"
    )
    # A key file that does not exist is not made beside a store that holds events.
    missing = tmp_path / "missing.key"
    result = run_ledger(["summary"], ledger_env(url, missing), tmp_path)
    assert_one_line_failure(result, f"no key file at {missing}")
    assert not missing.exists()


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("mysql://root@localhost/ledger", "must start with sqlite:/// or postgresql://"),
        ("postgresql://postgres@127.0.0.1:5432/ledger_no_such_database", "does not exist"),
    ],
)
def test_a_bad_database_url_fails_in_one_line(tmp_path: Path, url: str, fragment: str) -> None:
    result = run_ledger(["demo", "--scale", SCALE], ledger_env(url, tmp_path / "k"), tmp_path)
    assert result.returncode == 1
    assert_one_line_failure(result, fragment)


def test_a_bad_setting_fails_in_one_line(tmp_path: Path) -> None:
    env = ledger_env(f"sqlite:///{tmp_path / 'ledger.sqlite'}", tmp_path / "k")
    env["LEDGER_CONFLICT_RETRIES"] = "many"
    result = run_ledger(["summary"], env, tmp_path)
    assert_one_line_failure(result, "LEDGER_CONFLICT_RETRIES")


def test_an_encryption_key_of_the_wrong_length_fails_in_one_line(tmp_path: Path) -> None:
    env = ledger_env(f"sqlite:///{tmp_path / 'ledger.sqlite'}", tmp_path / "k")
    env["LEDGER_ENCRYPTION_KEY"] = base64.b64encode(b"too short").decode()
    result = run_ledger(["summary"], env, tmp_path)
    assert_one_line_failure(result, "32 bytes")


def test_help_lists_the_commands(tmp_path: Path) -> None:
    result = run_ledger(["--help"], ledger_env("sqlite:///x.sqlite", tmp_path / "k"), tmp_path)
    assert result.returncode == 0
    assert "demo" in result.stdout and "summary" in result.stdout


def test_tokens_are_created_listed_and_revoked(store, tmp_path: Path) -> None:
    settings, env = store
    created = run_ledger(
        ["token", "create", "--role", "auditor", "--pii", "--expires-in", "30"], env, tmp_path
    )
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip().splitlines()[-1]
    assert "." in token and " " not in token
    # stderr names the store: the SQLite file, or the database's URL (without a password).
    where = (
        str(Path(settings.database_url.removeprefix("sqlite:///")).resolve())
        if settings.database_url.startswith("sqlite")
        else settings.database_url
    )
    assert where in created.stderr, created.stderr
    token_id = str(uuid.UUID(hex=token.partition(".")[0]))

    listed = run_ledger(["token", "list", "--json"], env, tmp_path)
    assert listed.returncode == 0, listed.stderr
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    (row,) = [r for r in rows if r["id"] == token_id]
    assert row["role"] == "auditor" and row["pii"] is True and row["organization_code"] is None
    assert row["last_used_at"] is None and row["revoked_at"] is None
    created_at = datetime.datetime.fromisoformat(row["created_at"])
    expires_at = datetime.datetime.fromisoformat(row["expires_at"])
    assert expires_at - created_at == datetime.timedelta(days=30)
    assert created_at.utcoffset() == datetime.timedelta(hours=8)  # as read in China
    assert token.partition(".")[2] not in listed.stdout
    table = run_ledger(["token", "list"], env, tmp_path)
    assert table.returncode == 0 and table.stdout.splitlines()[0].split() == [
        "id",
        "role",
        "scope",
        "pii",
        "created",
        "expires",
        "last",
        "used",
        "revoked",
    ]
    assert token_id in table.stdout and "deployment-wide" in table.stdout

    revoked = run_ledger(["token", "revoke", token_id], env, tmp_path)
    assert revoked.returncode == 0, revoked.stderr
    listed = run_ledger(["token", "list", "--json"], env, tmp_path)
    (row,) = [
        json.loads(line)
        for line in listed.stdout.splitlines()
        if json.loads(line)["id"] == token_id
    ]
    assert datetime.datetime.fromisoformat(row["revoked_at"]) >= created_at
    ledger = Ledger(settings)
    try:
        assert Tokens(ledger).verify(token) is None
    finally:
        ledger.close()

    unknown = run_ledger(["token", "revoke", str(uuid.uuid4())], env, tmp_path)
    assert_one_line_failure(unknown, "no token has id")
    malformed = run_ledger(["token", "revoke", "nonsense"], env, tmp_path)
    assert_one_line_failure(malformed, "token id")
    for days in ("0", "3651"):
        too_long = run_ledger(
            ["token", "create", "--role", "clerk", "--expires-in", days], env, tmp_path
        )
        assert_one_line_failure(too_long, "1 to 3650 days")


def test_months_close_and_reopen_from_the_command_line(store, tmp_path: Path) -> None:
    settings, env = store
    root = build_plan("county", 0.002, 5).organizations[0]
    writer = Ledger(settings)
    try:
        writer.execute(
            FoundOrganization(
                code=root.code,
                name=root.name,
                level=root.level,
                parent_code=None,
                region_code=root.region_code,
                founded_on="2024-01-01",
            )
        )
    finally:
        writer.close()
    org = ["--organization", root.code]
    first = run_ledger(["close", *org, "--period", "2024-01"], env, tmp_path)
    assert first.returncode == 0, first.stderr
    assert "closed 2024-01" in first.stdout
    skipped = run_ledger(["close", *org, "--period", "2024-03"], env, tmp_path)
    assert_one_line_failure(skipped, "months close in order", "2024-02")
    assert run_ledger(["close", *org, "--period", "2024-02"], env, tmp_path).returncode == 0
    wrong = run_ledger(["reopen", *org, "--period", "2024-01", "--reason", "补记"], env, tmp_path)
    assert_one_line_failure(wrong, "only the last closed month reopens")
    reopened = run_ledger(
        ["reopen", *org, "--period", "2024-02", "--reason", "补记一笔"], env, tmp_path
    )
    assert reopened.returncode == 0, reopened.stderr
    reader = Ledger(settings)
    try:
        periods = reader.periods(root.code)
    finally:
        reader.close()
    assert periods["last_closed"] == "2024-01"
    assert [c["actor"] for c in periods["closed"]] == ["cli:close", "cli:close"]
    assert periods["reopenings"][0]["reason"] == "补记一笔"
    assert periods["reopenings"][0]["actor"] == "cli:reopen"
