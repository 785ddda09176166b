# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The base of the collection's controller-side action plugins.

An action plugin of the collection runs in ansible-playbook's own process (a worker fork), the way
Ansible's own controller-side actions do (ansible.builtin.debug, set_fact): no interpreter start, no
AnsiballZ payload, no re-import of google.auth per task. Its same-name file under plugins/modules/
holds only its documentation. Each one:
- validates its task arguments against its ARGUMENT_SPEC (and VALIDATION's constraints) with
  Ansible's own validator, so a bad option fails as a module's would, and censors its result of the
  no_log values as AnsibleModule does;
- receives the run's environment (module_utils/environment.py) that cloudact.gcp.env_facts built
  once and published as a fact (preflight adds the chosen credentials), and makes its calls with the
  environment's client (one per worker process, the run's shared token);
- applies the task's `environment:` for the length of its run (as a module would get it);
- fails with one line: a bad input (InputError, ValueError) as its message, an API error as its
  message with the HTTP `status` and `reason` in the result.
"""

from __future__ import annotations

from typing import ClassVar

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display
from ansible_collections.cloudact.gcp.plugins.module_utils import client as api_client
from ansible_collections.cloudact.gcp.plugins.module_utils import environment as env_model
from ansible_collections.cloudact.gcp.plugins.module_utils.errors import InputError

display = Display()


class ControllerAction(ActionBase):
    """An action that runs on the controller only; subclasses implement `act(args, facts)`."""

    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True
    _supports_async = False

    ARGUMENT_SPEC: ClassVar[dict] = {}
    # mutually_exclusive, required_one_of, required_by, ... as validate_argument_spec takes them
    VALIDATION: ClassVar[dict] = {}

    def run(self, tmp=None, task_vars=None):
        from ansible.module_utils.common.parameters import remove_values

        result = super().run(tmp, task_vars)
        del tmp
        self._vars = task_vars or {}
        validation, args = self.validate_argument_spec(argument_spec=self.ARGUMENT_SPEC, **self.VALIDATION)
        secret = validation._no_log_values
        # localcloud's client environment (ENV=local, a rehearsal) under the task's own `environment:`
        environment = dict((self.var(env_model.FACT) or {}).get("client_env") or {})
        task_environment = {}
        self._compute_environment_string(raw_environment_out=task_environment)
        environment.update(task_environment)
        try:
            with api_client.applied_environment(environment):
                result.update(self.act(args))
        except (InputError, ValueError) as exc:
            raise AnsibleActionFail(remove_values(str(exc), secret)) from None
        except api_client.ApiError as exc:
            raise AnsibleActionFail(
                remove_values(self.api_failure(exc), secret),
                result=dict(status=exc.status, reason=exc.reason),
            ) from None
        except AnsibleActionFail as exc:
            raise AnsibleActionFail(
                remove_values(exc.message, secret), result=remove_values(dict(exc._result), secret)
            ) from None
        finally:
            self.flush()
        return remove_values(result, secret)

    def api_failure(self, exc):
        """The message of an API error (an action may add what it knows, e.g. IAM propagation)."""
        return str(exc)

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

    @property
    def diff(self):
        return bool(self._task.diff)

    def act(self, args):  # pragma: no cover - every action defines it
        raise NotImplementedError


class ConvergeAction(ControllerAction):
    """A converging action of one job or a batch of jobs of one API (module_utils/batch.py).

    RESOURCE is the API's module_utils module (cloud_run, cloud_scheduler): its JOB_OPTIONS, its
    `converge` of one job, and optionally `CHECK(entry)` (before any request) and `BEFORE(api,
    entries, project, location, env)` (after the reads, before any change). The project is the
    environment's; the location defaults to its region.
    """

    RESOURCE: ClassVar[object] = None
    CHECK: ClassVar[object] = None
    BEFORE: ClassVar[object] = None

    def act(self, args):
        from ansible_collections.cloudact.gcp.plugins.module_utils import batch

        # An empty purge selector is refused first, before the environment is even needed (converge_all
        # refuses it too, for its other callers).
        batch.check_selector(args.get("purge_prefix"), self.RESOURCE, args.get("location") or "the region")
        env = self.environment()
        args = dict(args, location=args.get("location") or env.region)
        return batch.converge_all(
            self.client(),
            args,
            self.RESOURCE.JOB_OPTIONS,
            self.RESOURCE,
            self.RESOURCE.converge,
            env.project,
            self.check_mode,
            self.diff,
            check=type(self).CHECK,
            before=type(self).BEFORE,
        )
