# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""cloudact.gcp.bigquery_dataset_info: list the BigQuery datasets of the environment's project."""

from __future__ import annotations

from typing import ClassVar

from ansible_collections.cloudact.gcp.plugins.module_utils import bigquery
from ansible_collections.cloudact.gcp.plugins.plugin_utils.controller import ControllerAction


class ActionModule(ControllerAction):
    ARGUMENT_SPEC: ClassVar[dict] = dict(suffix=dict(type="str", default=""))

    def act(self, args):
        project = self.environment().project
        return {"changed": False, "datasets": bigquery.list_datasets(self.client(), project, args["suffix"])}
