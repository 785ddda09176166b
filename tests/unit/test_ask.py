"""toolkit.ask, the prod guard make runs before a play: typed, piped or CONFIRM=yes, else nothing runs."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest

from toolkit import ROOT, ask


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


# The prompt resolves the image's tag to its digest: here with no credentials and only a dead
# loopback proxy, so nothing can reach a real registry (the prompt then names the reference).
NO_CLOUD = {"GOOGLE_APPLICATION_CREDENTIALS": "/nonexistent/adc.json", "HTTPS_PROXY": "http://127.0.0.1:9"}


@pytest.mark.parametrize(
    ("env", "answer", "confirm", "expected"),
    [
        ("local", "", None, None),  # not guarded: nothing asked
        ("stage", "no", None, None),
        ("prod", "yes\n", None, True),
        ("prod", "  yes  \n", None, True),
        ("prod", "no\n", None, False),
        ("prod", "YES\n", None, False),
        ("prod", "", None, False),
        ("prod", "", "yes", True),
        ("prod", "yes\n", "y", False),  # a wrong CONFIRM is a refusal, not a prompt
    ],
)
def test_confirmed(monkeypatch, env, answer, confirm, expected) -> None:
    monkeypatch.delenv("CONFIRM", raising=False)
    monkeypatch.delenv("GCP_SERVICE_ACCOUNT_FILE", raising=False)
    for name, value in NO_CLOUD.items():
        monkeypatch.setenv(name, value)
    if confirm is not None:
        monkeypatch.setenv("CONFIRM", confirm)
    err = io.StringIO()
    assert ask.confirmed(env, "run alerts in " + env, stdin=Tty(answer), stderr=err) is expected
    if expected is False:
        assert "nothing was changed" in err.getvalue()


def run_ask(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("CONFIRM", "GCP_SERVICE_ACCOUNT_FILE")}
    env.update(NO_CLOUD)
    return subprocess.run(
        [sys.executable, "-m", "toolkit.ask", *args],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_command_prints_what_make_passes_to_the_play() -> None:
    assert run_ask("local", "run x").stdout == "false\n"
    piped = run_ask("prod", "run alerts in prod", stdin="yes\n")
    assert piped.returncode == 0 and piped.stdout == "true\n"
    assert "About to run alerts in prod (project cloudact-prod, image us-central1-docker.pkg.dev/" in (
        piped.stderr
    )
    assert "(digest not resolved: " in piped.stderr  # no credentials here: named, and still asked
    refused = run_ask("prod", "run alerts in prod", stdin="nope\n")
    assert refused.returncode == 1 and refused.stdout == ""
    assert "prod needs a typed \"yes\" and got 'nope': nothing was changed" in refused.stderr
    unknown = run_ask("dev", "run x")
    assert unknown.returncode == 2
    assert "unknown environment 'dev': valid environments are local, prod, stage, test" in unknown.stderr
