"""`gcr.io/cloud-builders/docker` without Docker: build, push, run and tag, as honest equivalents.

- `build`: the Dockerfile (the last stage) is read with dockerfile-parse. The image's files are what its
  COPY/ADD lines place, from the context (minus .dockerignore, with Docker's matching rules), at their
  destinations under WORKDIR; nothing of the base image is in it and RUN lines are not executed (each
  is logged as skipped). ENV, WORKDIR, USER, CMD, ENTRYPOINT and LABEL (plus `--label`) make the
  config; the digest is that of the files' canonical archive and the config
  (localcloud/services/artifactregistry_images.py). `--tag/-t` name it in this build's image store.
- `push IMAGE` (or `--all-tags`): only an image this build built or tagged, to Artifact Registry.
- `run IMAGE [CMD...]`: CMD in a subprocess from a copy of the image's files with its ENV and WORKDIR
  (localcloud's python stands in for the image's); the exit code is the step's.
- `tag SRC DST`.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dockerfile_parse import DockerfileParser
from dockerfile_parse.util import WordSplitter, extract_key_values

from localcloud.services.artifactregistry_images import Container, image_manifest, load_config, store_image

Log = Callable[[str], None]


class DockerError(Exception):
    """A docker command that fails: its message is printed and the step exits with `code`."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


def normalize(ref: str) -> str:
    """`name` -> `name:latest` (a digest or a tag kept)."""
    last = ref.rsplit("/", 1)[-1]
    return ref if ("@" in last or ":" in last) else f"{ref}:latest"


class LocalImages:
    """The images of one build (a worker's Docker daemon): by digest under root, tags -> digest."""

    def __init__(self, root: Path):
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.tags: dict[str, str] = {}
        self.meta: dict[str, dict[str, Any]] = {}  # digest -> {"manifest": bytes, "size": int}

    def add(self, files: Path, config: dict[str, Any]) -> str:
        digest, manifest, _, size = image_manifest(files, config)
        store_image(self.root, files, config, digest, manifest)
        self.meta[digest] = {"manifest": manifest, "size": size}
        return digest

    def dir(self, digest: str) -> Path:
        return self.root / digest.replace(":", "-")


# ---- .dockerignore ---------------------------------------------------------------------------------


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + "$")


class DockerIgnore:
    """Docker's .dockerignore: each pattern matches a path or one of its parent directories; the last
    matching pattern decides, `!` re-includes."""

    def __init__(self, text: str):
        self.rules: list[tuple[bool, re.Pattern[str], int]] = []
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            negate = line.startswith("!")
            line = line.removeprefix("!").strip().strip("/")
            line = re.sub(r"/+", "/", line).removeprefix("./")
            if line:
                self.rules.append((negate, _pattern_regex(line), line.count("/") + 1))

    def excluded(self, rel: str) -> bool:
        parts = rel.split("/")
        result = False
        for negate, regex, depth in self.rules:
            hit = bool(regex.match(rel)) or (
                len(parts) > depth and bool(regex.match("/".join(parts[:depth])))
            )
            if hit:
                result = not negate
        return result


# ---- docker build ----------------------------------------------------------------------------------


def _flags(
    args: list[str], with_value: set[str], boolean: set[str], command: str
) -> tuple[dict[str, list[str]], list[str]]:
    found: dict[str, list[str]] = {}
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if rest or not arg.startswith("-") or arg == "-":
            rest.append(arg)
        elif "=" in arg and arg.split("=", 1)[0] in with_value:
            name, value = arg.split("=", 1)
            found.setdefault(name, []).append(value)
        elif arg in with_value:
            if i + 1 >= len(args):
                raise DockerError(f"flag needs an argument: {arg}", 125)
            found.setdefault(arg, []).append(args[i + 1])
            i += 1
        elif arg in boolean or arg.split("=", 1)[0] in boolean:
            found.setdefault(arg.split("=", 1)[0], []).append("true")
        else:
            raise DockerError(f"unknown flag: {arg}\nSee 'docker {command} --help'.", 125)
        i += 1
    return found, rest


def build(args: list[str], cwd: Path, images: LocalImages, scratch: Path, log: Log) -> None:
    flags, rest = _flags(
        args,
        {
            "-t",
            "--tag",
            "--label",
            "--build-arg",
            "-f",
            "--file",
            "--network",
            "--platform",
            "--target",
            "--cache-from",
        },
        {"--pull", "--no-cache", "-q", "--quiet", "--rm", "--force-rm"},
        "build",
    )
    if len(rest) != 1:
        raise DockerError('"docker build" requires exactly 1 argument.', 1)
    context = (cwd / rest[0]).resolve()
    if not context.is_dir():
        raise DockerError(f'unable to prepare context: path "{rest[0]}" not found', 1)
    dockerfile = cwd / (flags.get("-f") or flags.get("--file") or [str(context / "Dockerfile")])[-1]
    if not dockerfile.is_file():
        raise DockerError(
            "unable to prepare context: unable to evaluate symlinks in Dockerfile path: "
            f"lstat {dockerfile}: no such file or directory",
            1,
        )
    tags = [normalize(t) for t in flags.get("-t", []) + flags.get("--tag", [])]
    labels = dict(item.partition("=")[::2] for item in flags.get("--label", []))
    build_args = dict(item.partition("=")[::2] for item in flags.get("--build-arg", []))
    ignore_file = context / ".dockerignore"
    ignore = DockerIgnore(ignore_file.read_text() if ignore_file.exists() else "")
    files = Path(tempfile.mkdtemp(prefix="build-", dir=scratch)) / "files"
    files.mkdir()
    config = _assemble(dockerfile, context, ignore, files, build_args, labels, log)
    digest = images.add(files, config)
    shutil.rmtree(files.parent, ignore_errors=True)
    log(f"Successfully built {digest.split(':')[1][:12]}")
    for tag in tags:
        images.tags[tag] = digest
        log(f"Successfully tagged {tag}")


def _assemble(dockerfile, context, ignore, files, build_args, labels, log) -> dict[str, Any]:
    parser = DockerfileParser(fileobj=dockerfile.open("rb"))
    steps = [s for s in parser.structure if s["instruction"] not in ("COMMENT",)]
    stages = [i for i, s in enumerate(steps) if s["instruction"] == "FROM"]
    if not stages:
        raise DockerError("failed to solve: the Dockerfile has no FROM instruction", 1)
    args: dict[str, str] = {}
    for s in steps[: stages[-1]]:  # ARGs before the last FROM
        if s["instruction"] == "ARG":
            name, _, default = s["value"].partition("=")
            args[name.strip()] = build_args.get(name.strip(), default.strip().strip('"'))
    env: dict[str, str] = {}
    config: dict[str, Any] = {
        "Env": [],
        "WorkingDir": "",
        "User": "",
        "Cmd": [],
        "Entrypoint": [],
        "Labels": {},
    }
    workdir = "/"
    for n, s in enumerate(steps[stages[-1] :], start=1):
        inst, value = s["instruction"], s["value"]
        log(f"Step {n}/{len(steps) - stages[-1]} : {inst} {value}")
        if inst == "FROM":
            log(f" ---> localcloud: the base image {value} is not part of the image (only COPY'd files are)")
        elif inst == "ARG":
            name, _, default = value.partition("=")
            args[name.strip()] = build_args.get(name.strip(), default.strip().strip('"'))
        elif inst == "ENV":
            env.update(extract_key_values(True, args, env, value))
        elif inst == "WORKDIR":
            workdir = str(Path(workdir) / _words(value, args, env)[0])
            config["WorkingDir"] = workdir
        elif inst in ("COPY", "ADD"):
            _copy(inst, value, args, env, workdir, context, ignore, files, log)
        elif inst == "USER":
            config["User"] = _words(value, args, env)[0]
        elif inst in ("CMD", "ENTRYPOINT"):
            config["Cmd" if inst == "CMD" else "Entrypoint"] = _exec_form(value)
        elif inst == "LABEL":
            config["Labels"].update(extract_key_values(True, args, env, value))
        elif inst == "RUN":
            log(" ---> localcloud: RUN is not executed (no Docker); the image has only its COPY'd files")
        else:
            log(f" ---> localcloud: {inst} has no effect on the emulated image")
    config["Env"] = [f"{k}={v}" for k, v in env.items()]
    config["Labels"].update(labels)
    return config


def _words(value: str, args: dict[str, str], env: dict[str, str]) -> list[str]:
    return list(WordSplitter(value, args=args, envs=env).split(dequote=True))


def _expand(word: str, values: dict[str, str]) -> str:
    return re.sub(r"\$(?:\{(\w+)\}|(\w+))", lambda m: values.get(m.group(1) or m.group(2), ""), word)


def _exec_form(value: str) -> list[str]:
    text = value.strip()
    if text.startswith("["):
        try:
            parsed = json.loads(text)
            if isinstance(parsed, list) and all(isinstance(p, str) for p in parsed):
                return parsed
        except ValueError:
            pass
    return ["/bin/sh", "-c", text]


def _copy(inst, value, args, env, workdir, context: Path, ignore: DockerIgnore, files: Path, log) -> None:
    text = value.strip()
    if text.startswith("[") and text.endswith("]"):  # the JSON form: variables expanded, no splitting
        words = [_expand(word, {**args, **env}) for word in _exec_form(text)]
    else:
        words = _words(text, args, env)
    while words and words[0].startswith("--"):
        flag = words.pop(0)
        if flag.startswith("--from"):
            raise DockerError(f"localcloud: {inst} {flag} (multi-stage builds) is not emulated", 1)
    if len(words) < 2:
        raise DockerError(f"{inst} requires at least two arguments", 1)
    *sources, dest = words
    if re.match(r"^https?://", sources[0]):
        raise DockerError(f"localcloud: {inst} from a URL is not emulated: {sources[0]}", 1)
    target = dest if dest.startswith("/") else str(Path(workdir) / dest)
    is_dir = dest.endswith("/") or len(sources) > 1
    for src in sources:
        matches = sorted(
            p for p in context.glob(src.lstrip("/")) if not ignore.excluded(p.relative_to(context).as_posix())
        )
        if not matches:
            raise DockerError(
                "COPY failed: file not found in build context or excluded by .dockerignore: "
                f"stat {src}: file does not exist",
                1,
            )
        for path in matches:
            if not path.resolve().is_relative_to(context):
                raise DockerError(f"COPY failed: forbidden path outside the build context: {src}", 1)
            if path.is_dir():
                _copy_tree(path, context, ignore, files / target.lstrip("/"))
            else:
                out = files / target.lstrip("/")
                out = out / path.name if (is_dir or out.is_dir()) else out
                out.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, out)


def _copy_tree(src: Path, context: Path, ignore: DockerIgnore, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for path in sorted(src.rglob("*")):
        rel = path.relative_to(context).as_posix()
        if ignore.excluded(rel):
            continue
        out = dest / path.relative_to(src)
        if path.is_dir():
            out.mkdir(parents=True, exist_ok=True)
        else:
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, out)


# ---- push, tag, run --------------------------------------------------------------------------------


def tag(args: list[str], images: LocalImages) -> None:
    if len(args) != 2:
        raise DockerError('"docker tag" requires exactly 2 arguments.', 1)
    src, dst = normalize(args[0]), normalize(args[1])
    if src not in images.tags:
        raise DockerError(f"Error response from daemon: No such image: {args[0]}", 1)
    images.tags[dst] = images.tags[src]


def push(args: list[str], images: LocalImages, registry: Any, built: str, log: Log) -> list[tuple[str, str]]:
    """Push tags of this build's images; (tag, digest) of each push."""
    flags, rest = _flags(args, set(), {"-a", "--all-tags", "-q", "--quiet"}, "push")
    if len(rest) != 1:
        raise DockerError('"docker push" requires exactly 1 argument.', 1)
    if flags.get("-a") or flags.get("--all-tags"):
        wanted = sorted(t for t in images.tags if t.rsplit(":", 1)[0] == rest[0])
        if not wanted:
            raise DockerError(f"An image does not exist locally with the tag: {rest[0]}", 1)
    else:
        wanted = [normalize(rest[0])]
    pushed = []
    for ref in wanted:
        if ref not in images.tags:
            raise DockerError(f"An image does not exist locally with the tag: {ref}", 1)
        pushed.append((ref, push_one(ref, images, registry, built, log)))
    return pushed


def push_one(ref: str, images: LocalImages, registry: Any, built: str, log: Log) -> str:
    from localcloud.services.artifactregistry import PushError

    digest = images.tags[ref]
    log(f"The push refers to repository [{ref.rsplit(':', 1)[0]}]")
    meta = images.meta[digest]
    directory = images.dir(digest)
    try:
        registry.push(
            ref, directory / "files", load_config(directory), digest, meta["manifest"], meta["size"], built
        )
    except PushError as e:
        raise DockerError(str(e), 1) from None
    log(f"{ref.rsplit(':', 1)[1]}: digest: {digest} size: {meta['size']}")
    return digest


def run_argv(
    args: list[str], images: LocalImages, registry: Any, scratch: Path
) -> tuple[Container, list[str], dict[str, str], str]:
    """(container, argv, env, cwd) of `docker run ...`; the caller runs it and closes the container."""
    flags, rest = _flags(
        args,
        {
            "-e",
            "--env",
            "--entrypoint",
            "-w",
            "--workdir",
            "--network",
            "--name",
            "-u",
            "--user",
            "--platform",
        },
        {"--rm", "-i", "-t", "-it", "--interactive", "--tty", "--init"},
        "run",
    )
    if not rest:
        raise DockerError('"docker run" requires at least 1 argument.', 125)
    ref, command = rest[0], rest[1:]
    digest = images.tags.get(normalize(ref))
    if digest is None and "@" in ref and ref.rsplit("@", 1)[1] in images.meta:
        digest = ref.rsplit("@", 1)[1]  # an image this build made, named by its digest
    if digest is not None:
        directory = images.dir(digest)
    else:
        found = registry.image(ref)
        if found is None:
            raise DockerError(
                f"Unable to find image '{ref}' locally\n"
                "docker: Error response from daemon: manifest unknown.",
                125,
            )
        directory = found["dir"]
    config = load_config(directory)
    env = {}
    for item in flags.get("-e", []) + flags.get("--env", []):
        key, sep, value = item.partition("=")
        env[key] = value if sep else ""
    entrypoint = flags.get("--entrypoint")
    container = Container(directory, config, scratch)
    workdir = (flags.get("-w") or flags.get("--workdir") or [""])[-1]
    if entrypoint:
        argv, merged, cwd = container.command([entrypoint[-1]], command, env, workdir)
    else:
        argv, merged, cwd = container.command(None, command or None, env, workdir)
    if not argv:
        container.close()
        raise DockerError("docker: Error response from daemon: No command specified.", 125)
    return container, argv, merged, cwd
