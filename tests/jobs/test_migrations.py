"""The example migrations' names (test_localcloud.py applies them through the Supabase API)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_migration_files_are_named_nn_name_and_plain_ddl():
    files = sorted((ROOT / "migrations").glob("*.sql"))
    assert len(files) >= 2
    for path in files:
        assert re.fullmatch(r"[0-9]{2,}_[a-z0-9_]+\.sql", path.name), path.name
        # One request per file runs as one transaction: these statements would fail inside it.
        assert not re.search(r"(?i)\b(CONCURRENTLY|VACUUM|ALTER SYSTEM)\b", path.read_text()), path.name
