"""The CloudAct scheduler-jobs toolkit's CLIs: thin commands over the cloudact.gcp collection.

The catalog model, the environments, the client and the status model live in the collection
(collections/ansible_collections/cloudact/gcp/plugins/module_utils), which the venv puts on the
path; these commands parse arguments, call them, and print.
"""

from pathlib import Path

from ansible_collections.cloudact.gcp.plugins.module_utils.errors import InputError as ToolkitError

ROOT = Path(__file__).resolve().parent.parent

__all__ = ["ROOT", "ToolkitError"]
