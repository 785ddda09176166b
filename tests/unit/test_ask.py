"""toolkit.ask, the prod guard make runs before a play: inputs first, then a typed, piped or CONFIRM=yes
answer to a question naming what will run, else nothing runs."""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys

import pytest

from toolkit import ROOT, ask


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


# No credentials and only a dead loopback proxy: nothing can reach a real cloud.
NO_CLOUD = {"GOOGLE_APPLICATION_CREDENTIALS": "/nonexistent/adc.json", "HTTPS_PROXY": "http://127.0.0.1:9"}


def args(**given) -> argparse.Namespace:
    values = dict(job="", execution="", start="", release="", dirty=False, force=False, extra=[])
    values.update(given)
    return argparse.Namespace(**values)


@pytest.mark.parametrize(
    ("env", "answer", "confirm", "expected"),
    [
        ("local", "", None, {}),  # not guarded: nothing asked, nothing to pass
        ("stage", "no", None, {}),
        ("prod", "yes\n", None, {"cloudact_confirmed": True}),
        ("prod", "  yes  \n", None, {"cloudact_confirmed": True}),
        ("prod", "no\n", None, None),
        ("prod", "YES\n", None, None),
        ("prod", "", None, None),
        ("prod", "", "yes", {"cloudact_confirmed": True}),
        ("prod", "yes\n", "y", None),  # a wrong CONFIRM is a refusal, not a prompt
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
    # pause names no digest: its question needs no cloud
    assert ask.confirmed(env, "pause", args(job="alerts"), stdin=Tty(answer), stderr=err) == expected
    if expected is None:
        assert "nothing was changed" in err.getvalue()


def run_ask(*argv: str, stdin: str = "") -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("CONFIRM", "GCP_SERVICE_ACCOUNT_FILE")}
    env.update(NO_CLOUD)
    return subprocess.run(
        [sys.executable, "-m", "toolkit.ask", *argv],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_command_prints_what_make_passes_to_the_play() -> None:
    assert run_ask("local", "pause").stdout == "{}\n"
    piped = run_ask("prod", "pause", "--job", "alerts", stdin="yes\n")
    assert piped.returncode == 0 and json.loads(piped.stdout) == {"cloudact_confirmed": True}
    assert "About to pause cloudact-daily-alerts-trigger in prod (project cloudact-prod)" in piped.stderr
    refused = run_ask("prod", "pause", stdin="nope\n")
    assert refused.returncode == 1 and refused.stdout == ""
    assert "prod needs a typed \"yes\" and got 'nope': nothing was changed" in refused.stderr
    unknown = run_ask("dev", "pause")
    assert unknown.returncode == 2
    assert (
        "unknown environment 'dev': valid environments are local, prod, stage, test (= stage)"
        in unknown.stderr
    )


def test_inputs_are_checked_before_the_question() -> None:
    """A release needs the Supabase project ref: an empty one is the refusal, and no question is asked."""
    release = run_ask("prod", "release", stdin="yes\n")
    assert release.returncode == 2, release.stderr
    assert (
        "cloudact_supabase_project_ref='': migrate needs the Supabase project ref of prod" in release.stderr
    )
    assert "inventories/prod/group_vars/all/env.yml" in release.stderr
    assert "About to" not in release.stderr


def test_a_question_that_cannot_name_the_digest_is_not_asked() -> None:
    """What would run must be read before the yes: without credentials the command stops, naming why."""
    run = run_ask("prod", "run", "--job", "alerts", stdin="yes\n")
    assert run.returncode == 2 and run.stdout == ""
    assert "About to" not in run.stderr
    assert run.stderr.startswith("error: ")


def test_extra_vars_are_read_as_ansible_reads_them(tmp_path) -> None:
    path = tmp_path / "vars.yml"
    path.write_text("cloudact_supabase_project_ref: fromfile\n")
    given = ["-e", "cloudact_migrations_source=/x", "-e", '{"a": {"b": 1}}', f"--extra-vars=@{path}"]
    assert ask.extra_vars(given) == {
        "cloudact_migrations_source": "/x",
        "a": {"b": 1},
        "cloudact_supabase_project_ref": "fromfile",
    }
    assert ask.extra_vars(["-i", "inventories/prod"]) == {}


def test_extra_vars_twice_in_one_process_each_get_their_own_and_leave_ansibles_globals() -> None:
    """Ansible's load_extra_vars keeps its first answer process-wide: each call gets its own values, and
    Ansible's CLI arguments and memo are as they were after it (a VariableManager made later is not fed)."""
    from ansible import context
    from ansible.utils.vars import load_extra_vars

    before = (context.CLIARGS, getattr(load_extra_vars, "extra_vars", None))
    assert ask.extra_vars(["-e", "cloudact_env=one"]) == {"cloudact_env": "one"}
    assert ask.extra_vars(["-e", "cloudact_env=two"]) == {"cloudact_env": "two"}
    assert (context.CLIARGS, getattr(load_extra_vars, "extra_vars", None)) == before
