"""The job image's default command: list the job scripts and how to run one.

A Cloud Run job always sets its command to a script's module, so reaching this means the command
is missing: it prints the usage and exits 2 (bad usage). `--help` exits 0.
"""

import ast
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def scripts() -> list[tuple[str, str]]:
    """(module name, first docstring line) of every job script."""
    found = []
    for category in ("manual", "daily", "monthly"):
        folder = os.path.join(HERE, category)
        for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
            if name.endswith(".py") and not name.startswith("_"):
                with open(os.path.join(folder, name), encoding="utf-8") as f:
                    doc = ast.get_docstring(ast.parse(f.read())) or ""
                summary = doc.strip().splitlines()[0] if doc.strip() else ""
                found.append((f"jobs.{category}.{name.removesuffix('.py')}", summary))
    return found


def main(argv: list[str]) -> int:
    lines = [
        "usage: python -m jobs.<category>.<script> [--help] [flags]   (run from the checkout, or /app)",
        "",
        "Job scripts:",
        *(f"  {module:36} {summary}" for module, summary in scripts()),
        "",
        "Each script takes --help.",
        "Exit codes: 0 done, 1 failed (Cloud Run retries), 2 bad configuration or usage.",
    ]
    out = sys.stdout if argv[:1] in (["-h"], ["--help"]) else sys.stderr
    print("\n".join(lines), file=out)
    return 0 if out is sys.stdout else 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
