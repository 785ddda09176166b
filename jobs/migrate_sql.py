"""PostgreSQL text helpers for supabase_migrate: literal quoting and a statement splitter.

The splitter follows psql's lexer closely enough for migration files: it skips '...' and E'...'
strings, "..." identifiers, $tag$...$tag$ bodies, -- and nested /* */ comments, and keeps the
semicolons of a SQL-standard function body (CREATE FUNCTION ... BEGIN ATOMIC ... END) inside
their statement. It lets the job refuse, before anything runs, a file whose statements cannot run
the way the file is marked, and run a `-- migrate:no-transaction` file one statement at a time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# A first line that marks a file whose statements must run outside a transaction.
NO_TRANSACTION_MARKER = re.compile(r"--\s*migrate:no-transaction\s*")

_IDENT_START = re.compile(r"[A-Za-z_\x80-\U0010ffff]")
_WORD = re.compile(r"[A-Za-z_\x80-\U0010ffff][A-Za-z0-9_$\x80-\U0010ffff]*")
_DOLLAR_TAG = re.compile(r"\$([A-Za-z_\x80-\U0010ffff][A-Za-z0-9_\x80-\U0010ffff]*)?\$")
HEAD_WORDS = 8  # leading keywords kept per statement; enough to classify it


def literal(value: str) -> str:
    """A PostgreSQL string literal for `value`, correct whatever standard_conforming_strings is.

    The E'' form reads backslashes as escapes in every configuration, so doubling them (and
    doubling quotes) is always right; a value without backslashes gets the plain form.
    """
    if "\x00" in value:
        raise ValueError("a PostgreSQL string cannot contain a NUL character")
    quoted = value.replace("'", "''")
    if "\\" in value:
        return "E'" + quoted.replace("\\", "\\\\") + "'"
    return "'" + quoted + "'"


def dollar_quote(value: str, tag: str = "cloudact") -> str:
    """`value` between $tag$ delimiters, with a tag that does not occur in the value."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", tag):
        raise ValueError(f"{tag!r} is not a valid dollar-quote tag")
    candidate, n = tag, 0
    while f"${candidate}$" in value or value.endswith(f"${candidate}"):
        n += 1
        candidate = f"{tag}_{n}"
    return f"${candidate}${value}${candidate}$"


@dataclass(frozen=True)
class Statement:
    text: str  # the statement without its terminating semicolon, comments included
    words: tuple[str, ...]  # its first keywords/identifiers outside quotes and comments, upper-cased
    line: int  # 1-based line of its first word in the file

    @property
    def head(self) -> str:
        return " ".join(self.words[:4])


class SqlSyntaxError(ValueError):
    """Text the splitter cannot read (an unterminated string, identifier, body or comment)."""


def split(sql: str) -> list[Statement]:
    """The top-level statements of `sql`; statements holding only comments/whitespace are dropped."""
    statements: list[Statement] = []
    n = len(sql)
    i = start = 0
    words: list[str] = []
    first_line = 0
    depth = 0  # BEGIN ATOMIC ... END nesting inside CREATE FUNCTION/PROCEDURE

    def line_of(pos: int) -> int:
        return sql.count("\n", 0, pos) + 1

    while i < n:
        c = sql[i]
        if c == "-" and sql.startswith("--", i):
            end = sql.find("\n", i)
            i = n if end < 0 else end + 1
        elif c == "/" and sql.startswith("/*", i):
            i = _skip_block_comment(sql, i, line_of)
        elif c == "'":
            escapes = i > 0 and sql[i - 1] in "eE" and (i < 2 or not _is_ident_char(sql[i - 2]))
            i = _skip_string(sql, i, escapes, line_of)
        elif c == '"':
            i = _skip_quoted(sql, i, '"', line_of, "quoted identifier")
        elif c == "$" and (i == 0 or not _is_ident_char(sql[i - 1])) and (m := _DOLLAR_TAG.match(sql, i)):
            close = sql.find(m.group(0), m.end())
            if close < 0:
                raise SqlSyntaxError(f"line {line_of(i)}: unterminated dollar-quoted string {m.group(0)}")
            i = close + len(m.group(0))
        elif c == ";" and depth == 0:
            if words:
                statements.append(Statement(sql[start:i].strip(), tuple(words), first_line))
            words, start = [], i + 1
            i += 1
        elif _IDENT_START.match(c) and (i == 0 or not _is_ident_char(sql[i - 1])):
            m = _WORD.match(sql, i)
            word = m.group(0).upper()
            if not words:
                first_line = line_of(i)
            if len(words) < HEAD_WORDS:
                words.append(word)
            if _is_routine(words):
                if word == "BEGIN" or (word == "CASE" and depth > 0):
                    depth += 1
                elif word == "END" and depth > 0:
                    depth -= 1
            i = m.end()
        else:
            i += 1
    if words:
        statements.append(Statement(sql[start:].strip(), tuple(words), first_line))
    return statements


def _is_ident_char(c: str) -> bool:
    return c.isalnum() or c in "_$" or ord(c) >= 0x80


def _is_routine(words: list[str]) -> bool:
    head = words[:4]
    if head[:3] == ["CREATE", "OR", "REPLACE"]:
        head = head[3:]
    elif head[:1] == ["CREATE"]:
        head = head[1:]
    else:
        return False
    return bool(head) and head[0] in ("FUNCTION", "PROCEDURE")


def _skip_string(sql: str, i: int, escapes: bool, line_of) -> int:
    j = i + 1
    n = len(sql)
    while j < n:
        c = sql[j]
        if escapes and c == "\\":
            j += 2
            continue
        if c == "'":
            if j + 1 < n and sql[j + 1] == "'":
                j += 2
                continue
            return j + 1
        j += 1
    raise SqlSyntaxError(f"line {line_of(i)}: unterminated string literal")


def _skip_quoted(sql: str, i: int, quote: str, line_of, what: str) -> int:
    j = i + 1
    while True:
        j = sql.find(quote, j)
        if j < 0:
            raise SqlSyntaxError(f"line {line_of(i)}: unterminated {what}")
        if sql.startswith(quote * 2, j):
            j += 2
            continue
        return j + 1


def _skip_block_comment(sql: str, i: int, line_of) -> int:
    depth, j = 0, i
    while j < len(sql):
        if sql.startswith("/*", j):
            depth, j = depth + 1, j + 2
        elif sql.startswith("*/", j):
            depth, j = depth - 1, j + 2
            if depth == 0:
                return j
        else:
            j += 1
    raise SqlSyntaxError(f"line {line_of(i)}: unterminated /* comment")


# --------------------------------------------------------------------------- classification


def transaction_control(stmt: Statement) -> str | None:
    """The command when `stmt` begins, ends or prepares a transaction (SAVEPOINT, ROLLBACK TO are fine)."""
    w = stmt.words
    if w[0] in ("BEGIN", "END", "ABORT"):
        return w[0]
    if w[0] in ("COMMIT", "ROLLBACK"):
        rest = w[1:]
        if rest[:1] in (("WORK",), ("TRANSACTION",)):
            rest = rest[1:]
        if w[0] == "ROLLBACK" and rest[:1] == ("TO",):
            return None  # ROLLBACK TO SAVEPOINT stays inside the transaction
        return f"{w[0]} PREPARED" if rest[:1] == ("PREPARED",) else w[0]
    if w[:2] in (("START", "TRANSACTION"), ("PREPARE", "TRANSACTION")):
        return " ".join(w[:2])
    return None


def needs_no_transaction(stmt: Statement) -> str | None:
    """What `stmt` is when PostgreSQL refuses it inside a transaction block, else None."""
    w = stmt.words
    if w[0] == "VACUUM":
        return "VACUUM"
    if w[:2] in (
        ("ALTER", "SYSTEM"),
        ("CREATE", "DATABASE"),
        ("DROP", "DATABASE"),
        ("CREATE", "TABLESPACE"),
        ("DROP", "TABLESPACE"),
    ):
        return " ".join(w[:2])
    if w[0] in ("CREATE", "DROP") and "INDEX" in w[1:3]:
        at = w.index("INDEX")
        if w[at + 1 : at + 2] == ("CONCURRENTLY",):
            return f"{w[0]} INDEX CONCURRENTLY"
    if w[0] == "REINDEX":
        for at, word in enumerate(w):
            if word in ("INDEX", "TABLE", "SCHEMA", "DATABASE", "SYSTEM"):
                if word in ("DATABASE", "SYSTEM") or w[at + 1 : at + 2] == ("CONCURRENTLY",):
                    return f"REINDEX {word}" + (" CONCURRENTLY" if "CONCURRENTLY" in w[at:] else "")
                break
    return None
