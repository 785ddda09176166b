"""The CloudAct scheduler-jobs toolkit: catalog, environments and operator tools."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class ToolkitError(Exception):
    """A bad input, reported to the operator as one line."""
