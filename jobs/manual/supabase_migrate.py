"""Placeholder: the real script comes with issue 6 (another engineer replaces this file)."""

import sys

if __name__ == "__main__":
    print("not implemented yet (issue 6)", file=sys.stderr)
    sys.exit(2)
