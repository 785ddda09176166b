# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""cloudact.gcp.cloud_scheduler_job: converge Cloud Scheduler jobs on the controller.

The converge is module_utils/cloud_scheduler.py's, over a batch (module_utils/batch.py).
"""

from __future__ import annotations

from typing import ClassVar

from ansible_collections.cloudact.gcp.plugins.module_utils import batch, cloud_scheduler
from ansible_collections.cloudact.gcp.plugins.plugin_utils.controller import ConvergeAction


class ActionModule(ConvergeAction):
    RESOURCE = cloud_scheduler
    CHECK = staticmethod(cloud_scheduler.requested)
    BEFORE = staticmethod(cloud_scheduler.targets_owned)
    ARGUMENT_SPEC: ClassVar[dict] = batch.argument_spec(cloud_scheduler.JOB_OPTIONS)
    VALIDATION: ClassVar[dict] = batch.BATCH_VALIDATION
