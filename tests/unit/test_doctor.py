"""The doctor's rules as data: the verdict, the table, a check's skip or failure, the credentials
rows before any call, the migrations compared (pending, drift, legacy checksums), the image path
of the migrations mapped to the checkout through the Dockerfile."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from ansible_collections.cloudact.gcp.plugins.module_utils import doctor_api, doctor_setup
from ansible_collections.cloudact.gcp.plugins.module_utils.client import ApiError
from ansible_collections.cloudact.gcp.plugins.module_utils.doctor import (
    Context,
    Row,
    Skip,
    diagnose,
    render,
    verdict,
)

from toolkit import ROOT


@pytest.mark.parametrize(
    ("results", "strict", "failed"),
    [
        (["ok", "ok"], False, False),
        (["ok", "warn"], False, False),
        (["ok", "warn"], True, True),
        (["ok", "skipped"], True, False),
        (["FAIL", "ok"], False, True),
    ],
)
def test_a_fail_fails_and_a_warning_only_with_strict(results, strict, failed):
    rows = [Row(f"c{i}", r, "x") for i, r in enumerate(results)]
    assert verdict(rows, strict)["failed"] is failed


def test_the_verdict_names_the_checks_and_strict():
    rows = [Row("a", "warn", ""), Row("b", "FAIL", ""), Row("c", "ok", "")]
    assert verdict(rows, True)["message"] == "doctor: a, b (STRICT=1)"
    assert verdict(rows)["message"] == "doctor: b"
    assert verdict(rows)["summary"] == "1 ok, 1 warn, 1 FAIL, 0 skipped"


def test_the_table_is_aligned():
    lines = render([Row("environment", "ok", "local"), Row("credentials", "FAIL", "bad", "make local-up")])
    assert lines[0] == "check        result  found  fix"
    assert lines[2] == "credentials  FAIL    bad    make local-up"
    assert len({line.index("result") for line in lines[:1]}) == 1


def test_a_skip_a_403_and_a_broken_check_are_rows_and_the_others_still_run():
    ctx = Context(env="local", root=str(ROOT), facts={})

    def skip(_):
        raise Skip("no API URL")

    def denied(_):
        raise ApiError("x: 403 PERMISSION_DENIED: Permission 'run.jobs.list' denied", status=403)

    def broken(_):
        raise KeyError("cloudact_secrets")

    rows = diagnose(ctx, [("a", skip), ("b", denied), ("c", broken), ("d", lambda _: Row("d", "ok", "fine"))])
    assert [(r.check, r.result) for r in rows] == [
        ("a", "skipped"),
        ("b", "skipped"),
        ("c", "FAIL"),
        ("d", "ok"),
    ]
    assert rows[0].found == "no API URL"
    assert rows[1].found.startswith("you lack the permission: x: 403 PERMISSION_DENIED")
    assert rows[2].found == "the check failed: KeyError: 'cloudact_secrets'"


def test_every_check_after_an_unknown_environment_word_is_skipped():
    ctx = Context(env="dev", root=str(ROOT))
    doctor_setup.load_facts(ctx)
    rows = diagnose(
        ctx, [("environment", doctor_setup.check_environment), ("x", lambda _: Row("x", "ok", ""))]
    )
    assert rows[0] == Row(
        "environment",
        "FAIL",
        "unknown environment 'dev': valid environments are local, prod, stage, test (= stage)",
        "make doctor ENV=<local|prod|stage|test>",
    )
    assert rows[1] == Row("x", "skipped", "unknown environment 'dev'")


def _stage(overrides):
    ctx = Context(env="stage", root=str(ROOT))
    doctor_setup.load_facts(ctx, overrides)
    return ctx


def test_a_tilde_key_that_is_missing_names_the_expanded_path_and_the_key_to_create(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("REHEARSE", raising=False)
    ctx = _stage({"cloudact_credentials_file": "~/k.json"})
    row = doctor_setup.check_credentials(ctx)
    assert row.result == "FAIL"
    assert row.found == f"credentials file ~/k.json ({tmp_path}/k.json) does not exist"
    assert row.fix == (
        f"gcloud iam service-accounts keys create {tmp_path}/k.json "
        "--iam-account=cloudact-jobs@cloudact-testing-1.iam.gserviceaccount.com --project=cloudact-testing-1"
    )
    assert ctx.blocked and ctx.api is None


def test_a_key_of_another_project_is_refused_before_any_call(tmp_path, monkeypatch):
    monkeypatch.delenv("REHEARSE", raising=False)
    key = tmp_path / "prod.json"
    key.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "cloudact-prod",
                "client_email": "cloudact-jobs@cloudact-prod.iam.gserviceaccount.com",
                "private_key": "not used",
                "token_uri": "https://oauth2.googleapis.com/token",
            }
        )
    )
    row = doctor_setup.check_credentials(_stage({"cloudact_credentials_file": str(key)}))
    assert row.result == "FAIL"
    assert (
        "is a key of project 'cloudact-prod', but this environment's project is 'cloudact-testing-1'"
        in row.found
    )
    where = "inventories/stage/group_vars/all/"
    assert row.fix == f"set cloudact_credentials_file to a key of project cloudact-testing-1 in {where}"


def test_migrations_are_pending_applied_or_drifted_and_legacy_checksums_count(tmp_path):
    texts = {"01_a.sql": "create table a();\n", "02_b.sql": "create table b();\n"}
    for name, text in texts.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "notes.txt").write_text("not a migration")
    sums = {n: hashlib.sha256(t.encode()).hexdigest() for n, t in texts.items()}
    ctx = Context(env="local", root=str(tmp_path), facts={"cloudact_migrations_dir": str(tmp_path)})
    ctx.localcloud = None
    pending = doctor_api.migrations_row(ctx, [{"filename": "01_a.sql", "checksum": sums["01_a.sql"][:16]}])
    assert (pending.result, pending.found) == ("warn", "1 applied, 1 pending: 02_b.sql")
    assert pending.fix == "make run ENV=local JOB=migrate"
    rows = [{"filename": n, "checksum": c} for n, c in sums.items()]
    assert doctor_api.migrations_row(ctx, rows).found == "all 2 applied, none pending"
    rows[1]["checksum"] = "0" * 64
    drift = doctor_api.migrations_row(ctx, rows)
    assert drift.result == "FAIL" and drift.found.startswith("drift: 02_b.sql changed since applied")
    assert 'make run ENV=local JOB=migrate ARGS="--repair"' in drift.fix
    fresh = doctor_api.migrations_row(ctx, None)
    assert fresh.found == "0 applied, 2 pending: 01_a.sql, 02_b.sql; no tracking table yet"


def test_the_images_migrations_dir_is_the_checkouts_through_the_dockerfile():
    ctx = Context(
        env="stage", root=str(ROOT), facts={"cloudact_migrations_dir": "/app/migrations/supabase_db"}
    )
    assert doctor_api.migrations_dir(ctx) == Path(ROOT) / "migrations"
    ctx.facts["cloudact_migrations_dir"] = "migrations/supabase_db"  # relative to WORKDIR /app
    assert doctor_api.migrations_dir(ctx) == Path(ROOT) / "migrations"
    ctx.facts["cloudact_migrations_dir"] = "/srv/elsewhere"
    assert doctor_api.migrations_dir(ctx) == Path("/srv/elsewhere")


def test_the_make_command_keeps_rehearse():
    ctx = Context(env="stage", root=str(ROOT), localcloud={"rehearse": True})
    assert ctx.make("run", "JOB=bootstrap") == "REHEARSE=1 make run ENV=stage JOB=bootstrap"
    assert Context(env="prod", root=str(ROOT)).make("create-jobs") == "make create-jobs ENV=prod"
