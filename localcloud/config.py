"""Fixed facts of the emulated project and where localcloud keeps its state."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
PROJECT = "cloudact-local"
REGION = "us-central1"
# The account of the key localcloud issues: the project's owner (the jobs' runtime account is a converge's).
SERVICE_ACCOUNT = f"cloudact-operator@{PROJECT}.iam.gserviceaccount.com"
KEY_FILE_NAME = "cloudact-operator-local.json"
TOKEN_URI = "https://oauth2.googleapis.com/token"  # noqa: S105 - a URL, not a secret
NO_PROXY = "127.0.0.1,localhost"

# The names `localcloud env` prints and client-env.json holds, in this order.
ENV_NAMES = ("HTTPS_PROXY", "NO_PROXY", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "GCP_SERVICE_ACCOUNT_FILE")


def default_state_dir() -> Path:
    env = os.environ.get("LOCALCLOUD_STATE_DIR")
    return Path(env).expanduser().resolve() if env else REPO_ROOT / ".localcloud"


class StateFiles:
    """The well-known files of a state directory (shared by the server, the CLI and the client)."""

    def __init__(self, state_dir: Path):
        self.root = Path(state_dir)
        self.pid = self.root / "localcloud.pid"
        # Held (flock) by the serving process for its whole life: one server per state directory.
        self.lock = self.root / "server.lock"
        self.log = self.root / "localcloud.log"
        self.port = self.root / "port"
        self.ready = self.root / "ready.json"
        self.client_env = self.root / "client-env.json"
        self.ca_cert = self.root / "ca" / "ca.pem"
        self.ca_key = self.root / "ca" / "ca-key.pem"
        self.keys = self.root / "keys"
        self.key_file = self.keys / KEY_FILE_NAME
        # {project: key file} of every hosted project (localcloud/projects.py), for REHEARSE=1.
        self.keys_index = self.root / "keys.json"


def lock_state_dir(state_dir: Path) -> Any:
    """Hold the state directory's server lock (returned open file), or None when another server holds it.

    Two servers on one state directory would corrupt each other's files; the lock, unlike a pid
    file, cannot go stale: the kernel drops it when its process ends, however it ends.
    """
    path = StateFiles(state_dir).lock
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle


def lock_holder(state_dir: Path) -> int | None:
    """The pid of the server holding the state directory's lock, if one does."""
    handle = lock_state_dir(state_dir)
    if handle is not None:
        handle.close()
        return None
    try:
        return int(StateFiles(state_dir).lock.read_text().strip())
    except (OSError, ValueError):
        return None
