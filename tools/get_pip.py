"""A get-pip.py for ansible-test, offline: pip from the standard library's ensurepip, not a download.

ansible-test bootstraps pip into each sanity virtual environment it creates (created without pip)
with a get-pip.py script that it downloads from ci-files.testing.ansible.com, a host the build
machines cannot reach. It first looks for a cached copy, `~/.ansible/test/cache/get_pip_<pip
version, dots as underscores>.py` (ansible_test/_util/target/setup/requirements.py, `bootstrap`),
and runs it with runpy as `__main__` in the new venv's interpreter, with pip's arguments:

    get_pip_24_2.py --disable-pip-version-check pip==24.2 --no-setuptools --no-wheel

`make lint` copies this file there (`python tools/get_pip.py --seed`: the version comes from
ansible-test itself). Run as get-pip, it does what get-pip.py does, with ensurepip's bundled pip
wheel in place of get-pip's embedded zip: it puts the wheel on sys.path, imports pip from it and runs
`pip install --upgrade --force-reinstall <arguments> pip [setuptools] [wheel]` in this interpreter
(the venv), so the pip ansible-test asks for (a pinned pip==X) comes from the package index as every
other requirement does, through pip's own configuration (certificate, index, proxy). Like get-pip.py,
`--no-setuptools`/`--no-wheel` (or PIP_NO_SETUPTOOLS/PIP_NO_WHEEL) leave those out, and they are
only added when absent.

Standard library only, for any Python >= 3.8 that ships ensurepip.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import sys
import tempfile

MARKER = "cloudact: get-pip from ensurepip"  # how --seed recognises a copy of its own


def bundled_pip_wheel() -> str:
    """The pip wheel ensurepip installs from (CPython's own, or a distribution's wheel directory)."""
    import ensurepip

    version = ensurepip.version()
    directories = [os.path.join(os.path.dirname(ensurepip.__file__), "_bundled")]
    distribution_dir = getattr(ensurepip, "_WHEEL_PKG_DIR", None)  # e.g. Debian's /usr/share/python-wheels
    if distribution_dir:
        directories.append(distribution_dir)
    for directory in directories:
        if os.path.isdir(directory):
            for name in sorted(os.listdir(directory)):
                if name.startswith(f"pip-{version}-") and name.endswith(".whl"):
                    return os.path.join(directory, name)
    raise SystemExit(f"get-pip (ensurepip): no pip {version} wheel in {' or '.join(directories)}")


def install_arguments(argv: list[str]) -> list[str]:
    """pip's command line, as get-pip.py's determine_pip_install_arguments builds it."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--no-setuptools", action="store_true")
    pre.add_argument("--no-wheel", action="store_true")
    options, args = pre.parse_known_args(argv)
    args.append("pip")
    for name, refused in (("setuptools", options.no_setuptools), ("wheel", options.no_wheel)):
        wanted = not refused and not os.environ.get(f"PIP_NO_{name.upper()}")
        if wanted and not importlib.util.find_spec(name):
            args.append(name)
    return ["install", "--upgrade", "--force-reinstall", *args]


def get_pip(argv: list[str]) -> int:
    with tempfile.TemporaryDirectory(prefix="get-pip-") as tmp:
        # A copy, so the wheel pip runs from cannot be the file a concurrent ensurepip replaces.
        wheel = shutil.copy(bundled_pip_wheel(), tmp)
        sys.path.insert(0, wheel)
        from pip._internal.cli.main import main as pip_main

        return pip_main(install_arguments(argv))


def cache_path() -> str:
    """Where ansible-test (the one importing this) looks for the get-pip script of its pinned pip."""
    from ansible_test._internal.python_requirements import get_venv_packages

    class Python:  # get_venv_packages reads only the version
        version = f"{sys.version_info[0]}.{sys.version_info[1]}"

    pip_version = get_venv_packages(Python())["pip"]
    return os.path.expanduser(f"~/.ansible/test/cache/get_pip_{pip_version.replace('.', '_')}.py")


def seed() -> int:
    """Copy this script to ansible-test's cache; a real get-pip already there is left alone."""
    target = cache_path()
    source = os.path.abspath(__file__)
    if os.path.exists(target):
        with open(target, encoding="utf-8") as cached:
            text = cached.read()
        if MARKER not in text:
            print(f"{target}: a get-pip of another origin, kept")
            return 0
        with open(source, encoding="utf-8") as mine:
            if text == mine.read():
                return 0
    os.makedirs(os.path.dirname(target), exist_ok=True)
    shutil.copyfile(source, target + ".tmp")
    os.replace(target + ".tmp", target)
    print(f"{target}: seeded from {os.path.relpath(source)}")
    return 0


if __name__ == "__main__":
    if sys.argv[1:] == ["--seed"]:
        sys.exit(seed())
    sys.exit(get_pip(sys.argv[1:]))
