# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The base of the collection's controller-side action plugins.

They run in ansible-playbook's own process (a worker fork), not as a module in a new Python: no
interpreter start, no re-import of google.auth per task. They read the play's variables they
need, apply the task's `environment:` for the length of their run (as a module would get it),
and make their calls through the collection's one client.
"""

from __future__ import annotations

from typing import ClassVar

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display
from ansible_collections.cloudact.gcp.plugins.module_utils import client as api_client
from ansible_collections.cloudact.gcp.plugins.module_utils import environment as env_model
from ansible_collections.cloudact.gcp.plugins.module_utils import gcp_api
from ansible_collections.cloudact.gcp.plugins.module_utils.errors import InputError

display = Display()


class ControllerAction(ActionBase):
    """An action that runs on the controller only; subclasses implement `act(args, facts)`."""

    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True
    _supports_async = False

    ARGUMENT_SPEC: ClassVar[dict] = {}

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        self._vars = task_vars or {}
        _, args = self.validate_argument_spec(argument_spec=self.ARGUMENT_SPEC)
        environment = {}
        self._compute_environment_string(raw_environment_out=environment)
        try:
            with api_client.applied_environment(environment):
                result.update(self.act(args))
        except (InputError, api_client.ApiError) as exc:
            raise AnsibleActionFail(str(exc)) from None
        finally:
            self.flush()
        return result

    def say(self, *lines):
        """Report lines for the operator, printed when the action ends (any stdout callback shows them)."""
        self._lines = getattr(self, "_lines", []) + [str(line) for line in lines]

    def flush(self):
        for line in getattr(self, "_lines", []):
            display.display(line)
        self._lines = []

    def var(self, name, default=None):
        """A play variable, templated, or `default` when it is not defined."""
        if name not in self._vars:
            return default
        return self._templar.template(self._vars[name])

    def environment(self):
        """The run's environment, built once by env_facts (and preflight's credentials), from its fact."""
        if getattr(self, "_environment", None) is None:
            self._environment = env_model.Environment.from_fact(self.var(env_model.FACT))
        return self._environment

    def client(self):
        """The run's client in this worker: the environment's credentials and shared token."""
        return self.environment().client()

    @property
    def check_mode(self):
        return bool(self._task.check_mode)

    def act(self, args):  # pragma: no cover - every action defines it
        raise NotImplementedError


class _Exit(Exception):
    def __init__(self, result):
        super().__init__()
        self.result = result


class InProcessModule:
    """What the collection's modules use of an AnsibleModule, for running one inside an action.

    The module's `run(mod)` gets this instead of a GcpModule: the same validated params, check
    mode and diff flags; `exit_json`/`fail_json` end the run with its result, censored of the
    no_log values as AnsibleModule censors them.
    """

    def __init__(self, params, check_mode, diff, no_log_values):
        self.params = params
        self.check_mode = check_mode
        self._diff = diff
        self.no_log_values = set(no_log_values)
        self.warnings = []

    def warn(self, warning):
        self.warnings.append(warning)

    def exit_json(self, **result):
        raise _Exit(result)

    def fail_json(self, msg, **result):
        raise _Exit(dict(result, failed=True, msg=msg))

    def finish(self, result):
        from ansible.module_utils.common.parameters import remove_values

        if self.warnings:
            result["warnings"] = self.warnings
        return remove_values(result, self.no_log_values)


_GCP_AUTH = dict(
    project=dict(type="str", fallback=(None, ["GCP_PROJECT"])),
    auth_kind=dict(
        type="str",
        required=True,
        fallback=(None, ["GCP_AUTH_KIND"]),
        choices=["machineaccount", "serviceaccount", "accesstoken", "application"],
    ),
    service_account_email=dict(type="str", fallback=(None, ["GCP_SERVICE_ACCOUNT_EMAIL"])),
    service_account_file=dict(type="path", fallback=(None, ["GCP_SERVICE_ACCOUNT_FILE"])),
    service_account_contents=dict(
        type="jsonarg", no_log=True, fallback=(None, ["GCP_SERVICE_ACCOUNT_CONTENTS"])
    ),
    access_token=dict(type="str", no_log=True, fallback=(None, ["GCP_ACCESS_TOKEN"])),
    scopes=dict(type="list", elements="str", fallback=(None, ["GCP_SCOPES"])),
    env_type=dict(type="str", fallback=(None, ["GCP_ENV_TYPE"])),
)


_KEY_SOURCES = ["service_account_email", "service_account_file", "service_account_contents"]


class ModuleInProcess(ActionBase):
    """An action that runs a cloudact.gcp module's own main() on the controller.

    Same options (module_defaults and google.cloud's GCP_* fallbacks included), same validation
    (the module's spec and constraints, through Ansible's ArgumentSpecValidator), same result as
    the module, without a new Python and its imports per task. MODULE names the module under
    plugins/modules/; its gcp_module() call gets an InProcessModule from this action
    (module_utils/gcp_api.py IN_PROCESS). The module file stays a module, for ansible-doc and for
    a remote or non-controller use.
    """

    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True
    _supports_async = False
    MODULE = ""

    def run(self, tmp=None, task_vars=None):
        import importlib

        from ansible.module_utils.basic import env_fallback

        result = super().run(tmp, task_vars)
        module = importlib.import_module("ansible_collections.cloudact.gcp.plugins.modules." + self.MODULE)
        environment = {}
        self._compute_environment_string(raw_environment_out=environment)
        auth = {k: dict(v, fallback=(env_fallback, v["fallback"][1])) for k, v in _GCP_AUTH.items()}
        made = []

        def build(spec, constraints):
            full = dict(spec)
            full.update(auth)
            exclusive = [*constraints.get("mutually_exclusive", []), _KEY_SOURCES]
            try:
                validation, args = self.validate_argument_spec(
                    argument_spec=full,
                    mutually_exclusive=exclusive,
                    required_if=constraints.get("required_if"),
                    required_one_of=constraints.get("required_one_of"),
                    required_together=constraints.get("required_together"),
                    required_by=constraints.get("required_by"),
                )
            except AnsibleActionFail as exc:
                raise _Exit(dict(failed=True, msg=str(exc))) from None
            mod = InProcessModule(
                args, bool(self._task.check_mode), bool(self._task.diff), validation._no_log_values
            )
            made.append(mod)
            return mod

        with api_client.applied_environment(environment):
            gcp_api.IN_PROCESS.append(build)
            try:
                module.main()
                outcome = {}
            except _Exit as done:
                outcome = done.result
            finally:
                gcp_api.IN_PROCESS.remove(build)
        result.update(made[-1].finish(outcome) if made else outcome)
        return result
