# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""cloudact.gcp.cloud_run_job: converge Cloud Run jobs on the controller (module_utils/cloud_run.py)."""

from __future__ import annotations

from typing import ClassVar

from ansible_collections.cloudact.gcp.plugins.module_utils import batch, cloud_run
from ansible_collections.cloudact.gcp.plugins.plugin_utils.controller import ConvergeAction


class ActionModule(ConvergeAction):
    RESOURCE = cloud_run
    CHECK = staticmethod(cloud_run.check_options)
    ARGUMENT_SPEC: ClassVar[dict] = batch.argument_spec(cloud_run.JOB_OPTIONS)
    VALIDATION: ClassVar[dict] = batch.BATCH_VALIDATION
