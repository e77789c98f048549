"""Production refuses a SECRET_KEY anyone could know; seed-demo (a public admin password) runs
only when the demo is on; the server installs without the test tools."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys

import pytest
from sqlalchemy import func, select

from shop import create_app
from tests.conftest import ROOT, make_app

EXAMPLE_ENV = ROOT / "deploy" / "farmlive.env.example"


def example_setting(name: str) -> str:
    """A setting's value in deploy/farmlive.env.example (what an operator copies)."""
    match = re.search(rf"^{name}=(.*)$", EXAMPLE_ENV.read_text(), re.MULTILINE)
    assert match, name
    return match.group(1).strip()


# --- SECRET_KEY --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        pytest.param(example_setting("SECRET_KEY"), id="deploy-example"),
        "dev",
        "secret",
        "changeme",
        "change-me-please-to-something-long-enough",
        pytest.param(secrets.token_hex(15), id="30-random-characters"),
    ],
)
def test_production_refuses_a_known_or_short_secret_key(key):
    # when the app is built for production with such a key, then it refuses
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        create_app("config.Config", FARMLIVE_ENV="production", SECRET_KEY=key)

    # while development (`make run`, a developer's own .env) and the tests keep theirs
    assert create_app("config.Config", SECRET_KEY=key).config["FARMLIVE_ENV"] == "development"
    create_app("config.TestConfig")


def test_a_production_process_with_the_example_key_exits_with_the_reason(tmp_path):
    # given the example env file copied without editing the key
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "DEMO"))}
    env.update(
        FARMLIVE_ENV="production",
        SECRET_KEY=example_setting("SECRET_KEY"),
        DATABASE_URL=f"sqlite:///{tmp_path / 'prod.sqlite3'}",
        UPLOAD_FOLDER=str(tmp_path / "uploads"),
    )

    # when the migration unit (or any flask command, or gunicorn) starts
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    # then it refuses, saying why, and touches nothing
    assert result.returncode != 0
    assert "SECRET_KEY is a placeholder" in result.stderr
    assert not (tmp_path / "prod.sqlite3").exists()

    # and once the key is real, the same command runs
    env["SECRET_KEY"] = secrets.token_hex(32)
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "prod.sqlite3").exists()


def test_the_deploy_files_run_in_production_with_secure_cookies():
    assert example_setting("FARMLIVE_ENV") == "production"
    assert example_setting("SESSION_COOKIE_SECURE") == "1"
    for unit in ("farmlive@.service", "farmlive-migrate.service"):
        assert "Environment=FARMLIVE_ENV=production" in (ROOT / "deploy/systemd" / unit).read_text()


# --- seed-demo ---------------------------------------------------------------------------------


def test_seed_demo_refuses_unless_the_demo_is_on(database_url, tmp_path):
    # given an app without DEMO
    app = make_app(database_url, tmp_path, DEMO=False)

    # when seed-demo runs
    result = app.test_cli_runner().invoke(args=["seed-demo"])

    # then it refuses, says how to turn the demo on, and creates no account
    assert result.exit_code != 0
    assert "DEMO=1" in result.output
    assert users(app) == 0

    # and with the demo on it seeds
    app.config["DEMO"] = True
    seeded = app.test_cli_runner().invoke(args=["seed-demo"])
    assert seeded.exit_code == 0, seeded.output
    assert users(app) > 0


def users(app) -> int:
    from shop.extensions import db
    from shop.models import User

    with app.app_context():
        count = db.session.scalar(select(func.count()).select_from(User))
        db.session.remove()
        return count


def test_make_run_turns_the_demo_on_for_seeding():
    # `make run` → `make seed`: the dry run shows the command it would run
    dry = subprocess.run(
        ["make", "-n", "seed"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )

    assert dry.returncode == 0, dry.stderr
    assert any(
        line.startswith("DEMO=1 ") and "seed-demo" in line for line in dry.stdout.splitlines()
    )


# --- requirements ------------------------------------------------------------------------------

DEV_ONLY = ("pytest", "hypothesis", "playwright", "ruff", "aiohttp", "schemathesis", "pip-tools")


def pins(name: str) -> dict[str, str]:
    lines = (ROOT / name).read_text().splitlines()
    return dict(line.split("==", 1) for line in lines if "==" in line and not line.startswith("#"))


def test_the_server_requirements_hold_no_test_tools():
    server, dev = pins("requirements.txt"), pins("requirements-dev.txt")

    assert not [name for name in DEV_ONLY if name in server]
    assert all(name in dev for name in DEV_ONLY)
    assert "flask" in server and "gunicorn" in server and "flask" not in dev
    # what both need is pinned to the same version
    assert all(server[name] == version for name, version in dev.items() if name in server)


def test_the_pins_come_from_the_in_files():
    for name in ("requirements.txt", "requirements-dev.txt"):
        header = (ROOT / name).read_text()
        source = name.replace(".txt", ".in")
        assert "autogenerated by pip-compile" in header and header.count(source) >= 1
    assert "-c requirements.txt" in (ROOT / "requirements-dev.in").read_text()


def test_make_test_installs_both_and_make_run_only_the_server():
    def dry_run(target: str) -> str:
        # -B: as from a fresh clone, every install step shows
        return subprocess.run(
            ["make", "-n", "-B", target], cwd=ROOT, capture_output=True, text=True, timeout=60
        ).stdout

    assert "requirements-dev.txt" in dry_run("test")
    assert "requirements-dev.txt" not in dry_run("seed")  # `make run` minus serving
