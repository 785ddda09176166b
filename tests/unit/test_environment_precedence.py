"""The toolkit's plain-data inventory model (module_utils/environment.py `read_facts`, what the CLIs and
the doctor read) agrees with Ansible's own: its VariableManager over the same inventory, on localhost,
above the cloudact_env role's defaults (the lowest precedence of a play's variables)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from ansible.inventory.manager import InventoryManager
from ansible.parsing.dataloader import DataLoader
from ansible.vars.manager import VariableManager
from ansible_collections.cloudact.gcp.plugins.module_utils import environment
from ansible_collections.cloudact.gcp.plugins.module_utils.errors import InputError

ROOT = Path(__file__).resolve().parents[2]


def ansible_facts(root: Path, env: str) -> dict:
    """What a play on localhost sees of the cloudact_* variables: the role defaults, then the inventory
    as Ansible's inventory loader and VariableManager make it."""
    loader = DataLoader()
    inventory = InventoryManager(loader=loader, sources=[str(root / "inventories" / env / "hosts.yml")])
    found = VariableManager(loader=loader, inventory=inventory).get_vars(
        host=inventory.get_host("localhost"), include_hostvars=False
    )
    merged = yaml.safe_load((root / environment.DEFAULTS_FILE).read_text())
    merged.update({k: v for k, v in found.items() if k.startswith("cloudact_")})
    return {
        k: (dict(v) if isinstance(v, dict) else list(v) if isinstance(v, list) else v)
        for k, v in merged.items()
    }


@pytest.mark.parametrize("env", environment.environments(ROOT))
def test_each_inventory_reads_as_ansible_reads_it(env):
    assert environment.read_facts(env, ROOT) == ansible_facts(ROOT, env)


def _write(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data))


@pytest.fixture
def layered(tmp_path: Path) -> Path:
    """A checkout whose inventory sets one variable at every level Ansible reads for localhost."""
    root = tmp_path / "checkout"
    (root / environment.DEFAULTS_FILE).parent.mkdir(parents=True)
    shutil.copy(ROOT / environment.DEFAULTS_FILE, root / environment.DEFAULTS_FILE)
    shutil.copytree(ROOT / "catalog", root / "catalog")
    inv = root / "inventories" / "layered"
    levels = (
        "group_file",
        "group_vars_file",
        "group_vars_dir_a",
        "group_vars_dir_b",
        "host_file",
        "host_vars",
    )
    _write(
        inv / "hosts.yml",
        {
            "all": {
                "vars": {"cloudact_level": "group_file", "cloudact_from_group_file": levels[0]},
                "hosts": {"localhost": {"cloudact_from_host_file": levels[4], "cloudact_top": levels[4]}},
            }
        },
    )
    # all/ is found before all.yml, which Ansible then does not read
    _write(inv / "group_vars" / "all.yml", {"cloudact_level": levels[1], "cloudact_gcp_project": "unread"})
    _write(inv / "group_vars" / "all" / "a.yml", {"cloudact_level": levels[2], "cloudact_gcp_project": "p-a"})
    _write(inv / "group_vars" / "all" / "env", {"cloudact_env": "layered"})  # no extension: read too
    _write(inv / "group_vars" / "all" / "notes.txt", {"cloudact_env": "unread"})
    _write(inv / "group_vars" / "all" / "b" / "z.yaml", {"cloudact_level": levels[3], "cloudact_top": "dir"})
    _write(
        inv / "host_vars" / "localhost.yml",
        {"cloudact_top": levels[5], "cloudact_gcp_region": "europe-west1"},
    )
    return root


def test_every_level_takes_ansibles_precedence(layered):
    ours = environment.read_facts("layered", layered)
    assert ours == ansible_facts(layered, "layered")
    # the levels, as Ansible orders them: group_vars above the inventory file's group vars, host vars
    # above group vars, host_vars/ above the inventory file's host vars
    assert ours["cloudact_level"] == "group_vars_dir_b" and ours["cloudact_top"] == "host_vars"
    assert ours["cloudact_gcp_project"] == "p-a" and ours["cloudact_gcp_region"] == "europe-west1"


def test_extra_vars_come_last(layered):
    built = environment.Environment.load(
        "stage",
        ROOT,
        extra_vars={"cloudact_gcp_region": "asia-east1"},
        environ={"LOCALCLOUD_STATE_DIR": "/nonexistent"},
    )
    assert built.region == "asia-east1"


def test_another_group_is_refused_naming_the_file(layered):
    hosts = layered / "inventories" / "layered" / "hosts.yml"
    _write(hosts, {"all": {"children": {"ops": {"hosts": {"localhost": {}}}}}})
    with pytest.raises(
        InputError, match=r"hosts.yml: group\(s\) ops: the toolkit's inventories hold localhost"
    ):
        environment.read_facts("layered", layered)
