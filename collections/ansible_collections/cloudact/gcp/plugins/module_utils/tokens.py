# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One OAuth token per credential and scope, shared by every process of a run through a 0600 file.

A make target runs several processes (toolkit.ask, ansible-playbook and its workers, a module's own
Python): without a shared token each would ask the token endpoint for its own. The token of a
service-account key is kept in `<state>/tokens/<fingerprint>.json` (mode 0600; the directory 0700),
where the fingerprint hashes the key's file, its key id, its account and the scopes, and it is used
until five minutes before it expires. The state directory is $CLOUDACT_STATE_DIR, else
`<checkout>/.cloudact` (git-ignored). Tokens are never printed; a file that cannot be read or
written only costs a token request.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from datetime import UTC, datetime, timedelta

STATE_VARIABLE = "CLOUDACT_STATE_DIR"
MARGIN = timedelta(minutes=5)  # a cached token is not used in its last minutes


def state_dir(root=None, environ=None):
    """$CLOUDACT_STATE_DIR, else `<root>/.cloudact`; None when neither is known."""
    environ = os.environ if environ is None else environ
    given = (environ.get(STATE_VARIABLE) or "").strip()
    if given:
        return os.path.abspath(os.path.expanduser(given))
    return os.path.join(str(root), ".cloudact") if root else None


def fingerprint(creds, key_file, scopes):
    """Which token a cache file holds: the key file, its key id, its account and the scopes."""
    parts = [
        os.path.abspath(key_file or ""),
        getattr(creds, "_key_id", None) or "",
        getattr(creds, "service_account_email", "") or "",
        " ".join(sorted(scopes or ())),
    ]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32]


def _now():
    return datetime.now(UTC).replace(tzinfo=None)  # google.auth keeps naive UTC expiries


def load(path):
    """(token, expiry) of a cache file still good for MARGIN, else None."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        expiry = datetime.strptime(data["expiry"], "%Y-%m-%dT%H:%M:%S")
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if expiry - _now() <= MARGIN or not data.get("token"):
        return None
    return data["token"], expiry


def save(path, token, expiry):
    """Write the cache file atomically, 0600 in a 0700 directory; failures are silent (a token costs more)."""
    folder = os.path.dirname(path)
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".token-", dir=folder)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump({"token": token, "expiry": expiry.strftime("%Y-%m-%dT%H:%M:%S")}, f)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
        prune(folder)
    except OSError:
        pass


def prune(folder, now=None):
    """Remove cache files whose token has expired (an hour-old file at most)."""
    now = now or time.time()
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        path = os.path.join(folder, name)
        if name.endswith(".json") and load(path) is None:
            try:
                if now - os.path.getmtime(path) > 60:
                    os.unlink(path)
            except OSError:
                pass


def shared(creds, key_file, scopes, folder):
    """`creds` (google.auth service-account credentials) using and refreshing the shared token.

    The cached token, when still good, is set on the credentials (no token request); a refresh the
    credentials make writes the new token back for the other processes.
    """
    if not folder or creds is None:
        return creds
    path = os.path.join(folder, "tokens", fingerprint(creds, key_file, scopes) + ".json")
    found = load(path)
    if found is not None:
        creds.token, creds.expiry = found
    refresh = creds.refresh

    def refreshed(request):
        cached = load(path)  # another process may have refreshed it meanwhile
        if cached is not None and cached[0] != creds.token:
            creds.token, creds.expiry = cached
            return
        refresh(request)
        if creds.token and creds.expiry:
            save(path, creds.token, creds.expiry)

    creds.refresh = refreshed
    return creds
