"""Service-account keys localcloud issues, the tokens it grants, and bearer-token checks.

Token lifetimes are judged by the real clock, not the emulated one: clients (google-auth)
decide when to refresh by real time, so advancing the emulated clock must not expire them.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from localcloud import projects as hosted_projects
from localcloud.config import TOKEN_URI
from localcloud.service import Unauthenticated

TOKEN_LIFETIME = 3600  # seconds; responses say expires_in 3599 as Google does
MAX_JWT_LIFETIME = 3600  # Google refuses assertions valid for longer than an hour
CLOCK_SKEW = 300  # tolerated difference between the client's clock and ours

_MISSING = (
    "Request is missing required authentication credential. Expected OAuth 2 access token, login cookie "
    "or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project."
)
_INVALID = (
    "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other "
    "valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project."
)


_X509_URL = "https://www.googleapis.com/robot/v1/metadata/x509/"


class InvalidGrant(Exception):
    """A token request localcloud refuses; the message is the OAuth error_description."""

    def __init__(self, description: str, error: str = "invalid_grant"):
        super().__init__(description)
        self.error = error
        self.description = description


@dataclass(frozen=True)
class IssuedKey:
    kid: str
    client_email: str
    public_key: rsa.RSAPublicKey


class Auth:
    """Keys issued under state/keys/, tokens granted (hashed) under state/auth/tokens.jsonl."""

    def __init__(self, keys_dir: Path, auth_dir: Path, project: str, projects: tuple[str, ...] = ()):
        self.keys_dir = keys_dir
        self.project = project
        self.projects = (project, *(p for p in projects if p != project))  # whose accounts get tokens
        self.keys_dir.mkdir(parents=True, exist_ok=True)
        auth_dir.mkdir(parents=True, exist_ok=True)
        self._tokens_file = auth_dir / "tokens.jsonl"
        self._lock = threading.Lock()
        self._keys: dict[str, IssuedKey] = {}
        self._tokens: dict[str, tuple[str, float]] = {}  # sha256(token) -> (principal, expiry)
        # Set by IAM when it enforces: an account that does not exist (deleted, or never created) gets
        # no token and its tokens stop working, as on Google ("Invalid grant: account not found").
        self.account_ok: Callable[[str], bool] | None = None
        self._load()

    # ---- keys ----------------------------------------------------------------------------------------

    def _load(self) -> None:
        for path in sorted(self.keys_dir.glob("*.json")):
            info = json.loads(path.read_text())
            private = serialization.load_pem_private_key(info["private_key"].encode(), password=None)
            self._keys[info["private_key_id"]] = IssuedKey(
                info["private_key_id"], info["client_email"], private.public_key()
            )
        now = time.time()
        if self._tokens_file.exists():
            for line in self._tokens_file.read_text().splitlines():
                row = json.loads(line)
                if row["exp"] > now:
                    self._tokens[row["sha256"]] = (row["principal"], row["exp"])
        # Compact: drop expired grants so the file does not grow without bound.
        self._rewrite_tokens()

    def _rewrite_tokens(self) -> None:
        lines = [
            json.dumps({"sha256": h, "principal": p, "exp": exp}) + "\n"
            for h, (p, exp) in self._tokens.items()
        ]
        tmp = self._tokens_file.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.writelines(lines)
        tmp.replace(self._tokens_file)

    def issue_key(self, email: str, path: Path, project: str | None = None) -> Path:
        """Write a real service-account key file (mode 0600) and trust its public key from now on.

        The key's project_id is `project`, else the account's (`name@<project>.iam.gserviceaccount.com`)."""
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        kid = secrets.token_hex(20)
        info = {
            "type": "service_account",
            "project_id": project or email.rpartition("@")[2].split(".", 1)[0] or self.project,
            "private_key_id": kid,
            "private_key": pem,
            "client_email": email,
            "client_id": str(secrets.randbelow(9 * 10**20) + 10**20),
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": TOKEN_URI,
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "client_x509_cert_url": _X509_URL + quote(email, safe=""),
            "universe_domain": "googleapis.com",
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(info, f, indent=2)
        with self._lock:
            self._keys[kid] = IssuedKey(kid, email, private.public_key())
        return path

    def _verify_jwt(self, token: str, audience_ok) -> dict:
        """Claims of an RS256 JWT signed by an issued key; raises ValueError with the reason."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as e:
            raise ValueError(f"malformed JWT: {e}") from None
        key = self._keys.get(header.get("kid", ""))
        if key is None:
            raise ValueError("JWT signed by a key localcloud did not issue (unknown kid)")
        try:
            claims = jwt.decode(
                token,
                key.public_key,
                algorithms=["RS256"],
                options={
                    "verify_aud": False,
                    "verify_exp": False,
                    "verify_iat": False,
                    "require": ["exp", "iat"],
                },
            )
        except jwt.PyJWTError as e:
            raise ValueError(f"JWT signature check failed: {e}") from None
        now = time.time()
        if claims["exp"] < now - CLOCK_SKEW:
            raise ValueError("JWT expired")
        if claims["iat"] > now + CLOCK_SKEW or claims["exp"] - claims["iat"] > MAX_JWT_LIFETIME:
            raise ValueError("JWT iat/exp out of range: it must be short-lived (60 minutes) and current")
        if claims.get("iss") != key.client_email:
            raise ValueError(f"JWT iss {claims.get('iss')!r} is not the key's account {key.client_email}")
        if not audience_ok(claims):
            raise ValueError(f"JWT audience {claims.get('aud')!r} not accepted here")
        return claims

    # ---- tokens --------------------------------------------------------------------------------------

    def grant_for_assertion(self, assertion: str) -> tuple[str, int]:
        """The token endpoint's work: verify a JWT-bearer assertion, return (access token, expires_in)."""
        try:
            claims = self._verify_jwt(assertion, lambda c: c.get("aud") == TOKEN_URI)
        except ValueError as e:
            raise InvalidGrant(f"Invalid JWT: {e}") from None
        if not claims.get("scope"):
            raise InvalidGrant("Invalid OAuth scope or ID token audience provided.", error="invalid_scope")
        if self.account_ok is not None and not self.account_ok(claims["iss"]):
            raise InvalidGrant("Invalid grant: account not found")
        return self.mint(claims["iss"]), TOKEN_LIFETIME - 1

    def mint(self, principal: str) -> str:
        if hosted_projects.project_of(principal) not in self.projects:
            raise ValueError(
                f"localcloud mints tokens only for service accounts of its projects "
                f"({', '.join(self.projects)}), not {principal!r}"
            )
        token = "ya29.lc-" + secrets.token_urlsafe(48)
        exp = time.time() + TOKEN_LIFETIME
        digest = hashlib.sha256(token.encode()).hexdigest()
        with self._lock:
            self._tokens[digest] = (principal, exp)
            fd = os.open(self._tokens_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            with os.fdopen(fd, "a") as f:
                f.write(json.dumps({"sha256": digest, "principal": principal, "exp": exp}) + "\n")
        return token

    def authenticate(self, authorization: str | None, host: str) -> str:
        """The principal behind an `Authorization: Bearer` header value; raises Unauthenticated."""
        if not authorization:
            raise Unauthenticated(_MISSING)
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthenticated(f"{_INVALID} (localcloud: expected 'Authorization: Bearer <token>')")
        if token.count(".") == 2:
            audience = f"https://{host}/"

            def audience_ok(claims: dict) -> bool:
                aud = claims.get("aud")
                return bool(claims.get("scope")) or aud in (audience, audience.rstrip("/"))

            try:
                claims = self._verify_jwt(token, audience_ok)
            except ValueError as e:
                raise Unauthenticated(f"{_INVALID} (localcloud: {e})") from None
            if claims.get("sub", claims["iss"]) != claims["iss"]:
                raise Unauthenticated(f"{_INVALID} (localcloud: self-signed JWT with sub != iss)")
            return self._existing(claims["iss"])
        grant = self._tokens.get(hashlib.sha256(token.encode()).hexdigest())
        if grant is None:
            raise Unauthenticated(f"{_INVALID} (localcloud: unknown access token)")
        principal, exp = grant
        if exp < time.time():
            raise Unauthenticated(f"{_INVALID} (localcloud: access token expired)")
        return self._existing(principal)

    def _existing(self, principal: str) -> str:
        if self.account_ok is not None and not self.account_ok(principal):
            raise Unauthenticated(f"{_INVALID} (localcloud: the account {principal} does not exist)")
        return principal
