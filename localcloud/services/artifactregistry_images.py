"""Container images without Docker: an image is a directory of files (its root filesystem, as the
Dockerfile's COPY lines placed them) and a config (Env, WorkingDir, User, Cmd, Entrypoint, Labels).

Its digest is that of a Docker v2 manifest over one canonical layer (an uncompressed tar of the files:
sorted, mtime 0, uid/gid 0, modes 0644/0755) and the config JSON (sorted keys, no timestamps), so the
same tree and Dockerfile always give the same digest. A container runs from a copy of the files with
the image's paths (WORKDIR, absolute paths in the env values of the image's ENV and of the container,
as the job, a run's overrides or `docker run -e` set them, and in arguments such as /app/jobs) mapped
into that copy, and `python` is localcloud's own interpreter standing in for the image's.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

MANIFEST_TYPE = "application/vnd.docker.distribution.manifest.v2+json"
CONFIG_TYPE = "application/vnd.docker.container.image.v1+json"
LAYER_TYPE = "application/vnd.docker.image.rootfs.diff.tar"
# The image's interpreter: localcloud's venv has the job dependencies that the Dockerfile's RUN pip
# install would have put in the image (RUN lines are not executed).
PYTHONS = ("python", "python3", "python3.11", "/usr/local/bin/python", "/usr/local/bin/python3")
HOST_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR")
# localcloud's venv puts the checkout on sys.path (a .pth file): the image's python must not see it, or a
# module the image lacks would quietly come from the checkout.
CHECKOUT = Path(__file__).resolve().parents[2]
SITE_SHIM = (
    "import sys\n"
    f"sys.path[:] = [p for p in sys.path if p not in {[str(CHECKOUT), str(CHECKOUT / 'collections')]!r}]\n"
)


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def layer_tar(root: Path) -> bytes:
    """The canonical archive of a files directory: the same files always give the same bytes."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(root.rglob("*"), key=lambda p: p.relative_to(root).as_posix()):
            rel = path.relative_to(root).as_posix()
            info = tarfile.TarInfo(rel)
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            if path.is_symlink():
                info.type, info.linkname, info.mode = tarfile.SYMTYPE, os.readlink(path), 0o777
                tar.addfile(info)
            elif path.is_dir():
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                data = path.read_bytes()
                info.size = len(data)
                info.mode = 0o755 if os.access(path, os.X_OK) else 0o644
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def config_blob(config: dict[str, Any], diff_ids: list[str]) -> bytes:
    """The image's config blob (the manifest's `config.digest` is its sha256): the config (Env,
    WorkingDir, User, Cmd, Entrypoint, Labels; empty ones left out) under `config`, as Docker's is."""
    return canonical_json(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {k: v for k, v in config.items() if v not in (None, "", [], {})},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }
    )


def image_manifest(root: Path, config: dict[str, Any]) -> tuple[str, bytes, bytes, int]:
    """(digest "sha256:<hex>", manifest bytes, config bytes, size in bytes) of an image."""
    layer = layer_tar(root)
    layer_digest = "sha256:" + hashlib.sha256(layer).hexdigest()
    config_bytes = config_blob(config, [layer_digest])
    manifest = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST_TYPE,
            "config": {
                "mediaType": CONFIG_TYPE,
                "size": len(config_bytes),
                "digest": "sha256:" + hashlib.sha256(config_bytes).hexdigest(),
            },
            "layers": [{"mediaType": LAYER_TYPE, "size": len(layer), "digest": layer_digest}],
        }
    )
    digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
    return digest, manifest, config_bytes, len(layer) + len(config_bytes) + len(manifest)


def store_image(store: Path, files: Path, config: dict[str, Any], digest: str, manifest: bytes) -> Path:
    """Keep an image's files and config under store/sha256-<hex>/ (once per digest); its directory."""
    target = store / digest.replace(":", "-")
    if (target / "config.json").exists():
        return target
    store.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".incoming-", dir=store))
    shutil.copytree(files, tmp / "files", symlinks=True)
    (tmp / "manifest.json").write_bytes(manifest)
    (tmp / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True))
    try:
        tmp.rename(target)
    except OSError:  # another push of the same digest won the race
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def load_config(image_dir: Path) -> dict[str, Any]:
    return json.loads((image_dir / "config.json").read_text())


def stored_blob(image_dir: Path, digest: str) -> bytes | None:
    """A blob of a stored image by its digest: the config blob (made again from config.json and the
    manifest's layer digests) or the layer (the canonical archive of files/), and only when the bytes'
    sha256 is that digest; else None (not this image's blob)."""
    manifest = json.loads((image_dir / "manifest.json").read_bytes())
    layers = [layer["digest"] for layer in manifest.get("layers", [])]
    if manifest.get("config", {}).get("digest") == digest:
        data = config_blob(load_config(image_dir), layers)  # the layers are uncompressed: diff_id = digest
    elif digest in layers:
        data = layer_tar(image_dir / "files")
    else:
        return None
    return data if "sha256:" + hashlib.sha256(data).hexdigest() == digest else None


class Container:
    """One run of an image: a copy of its files (the container's writable layer), removed by close()."""

    def __init__(self, image_dir: Path, config: dict[str, Any], scratch: Path | None = None):
        self.config = config
        self.dir = Path(tempfile.mkdtemp(prefix="container-", dir=scratch))
        self.root = self.dir / "rootfs"
        shutil.copytree(image_dir / "files", self.root, symlinks=True)
        self.site = self.dir / "site"
        self.site.mkdir()
        (self.site / "sitecustomize.py").write_text(SITE_SHIM)

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    def path(self, value: str) -> str:
        """An image path (absolute, inside the image) as a path in this container's copy; anything else
        (a relative path, a path the image does not have, the `//host/...` of a URL) unchanged."""
        if not value.startswith("/") or value.startswith("//"):
            return value
        first = value.lstrip("/").split("/", 1)[0]
        return str(self.root / value.lstrip("/")) if first and (self.root / first).exists() else value

    def env_value(self, value: str) -> str:
        """An env value as the container's processes see it: each `:`-separated image path mapped into
        this copy (`/app/migrations` or `/app:/app/lib`), everything else as it was. The one mapping of
        the image's ENV and of the container's own env."""
        return ":".join(self.path(part) for part in value.split(":"))

    def command(
        self,
        command: list[str] | None,
        args: list[str] | None,
        env: dict[str, str] | None = None,
        workdir: str = "",
        runtime_env: dict[str, str] | None = None,
    ) -> tuple[list[str], dict[str, str], str]:
        """(argv, environment, cwd) for a process of this container, as a runtime composes them:
        ENTRYPOINT + CMD, a given command replacing the entrypoint and given args the CMD. The
        environment: the image's ENV, then `runtime_env` as given (what the runtime adds: localcloud's
        own host paths, such as the key file and the CA bundle), then `env`, the container's own (the
        job's and a run's overrides, `docker run -e`), both ENV and `env` with their image paths mapped
        into this copy, as in a real container they resolve in the image's files."""
        entrypoint = list(self.config.get("Entrypoint") or [])
        cmd = list(self.config.get("Cmd") or [])
        if command:
            argv = [*command, *(args or [])]
        else:
            argv = [*entrypoint, *(args if args else cmd)]
        argv = [self.path(a) for a in argv]
        if argv and argv[0] in PYTHONS:
            argv[0] = sys.executable
        merged = {k: os.environ[k] for k in HOST_ENV if k in os.environ}
        for item in self.config.get("Env") or []:
            key, _, value = item.partition("=")
            if key != "PATH":
                merged[key] = self.env_value(value)
        merged.update(runtime_env or {})
        merged.update({key: self.env_value(value) for key, value in (env or {}).items()})
        if argv and argv[0] == sys.executable:
            merged["PYTHONPATH"] = ":".join(p for p in (str(self.site), merged.get("PYTHONPATH", "")) if p)
        cwd = self.root / (workdir or self.config.get("WorkingDir") or "/").lstrip("/")
        cwd.mkdir(parents=True, exist_ok=True)  # as a runtime creates a missing working directory
        return argv, merged, str(cwd)
