#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Start, wait for or cancel one Cloud Run job execution (the action plugin of the same name)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: cloud_run_execution
short_description: Start, wait for or cancel a Cloud Run job execution
description:
  - Starts a new execution of a Cloud Run job (C(jobs.run)) with optional overrides, or finds an
    existing one by name; optionally waits for it to finish, printing a progress line every
    O(progress_interval) seconds; or cancels it.
  - Starting is an action, never idempotent. Each call with O(state=present) and no O(name) starts
    one execution (in check mode it reports C(changed), says what it would start, and starts nothing).
  - >-
    Exactly one execution per call, also when an answer is lost. The job is read first; the C(:run)
    carries the job's C(etag), so Cloud Run itself refuses the run if the job changed since, and an
    id of this run (O(run_id), in the overrides' env as C(CLOUDACT_RUN_ID)). After a lost answer (a
    500, 502 or 504, a read timeout, a dropped connection) the action never sends C(:run) again
    blindly: it pages the job's executions newest first, back to the failed request's Date minus
    60 s, and adopts the one carrying this run's id (two are refused, naming both). Only when none
    appears within 10 s is the run sent again. A 408, 429 or 503 (the server did not act) is resent.
  - With O(confirmed_digest), the run is refused before anything is sent when the job's image is
    not that digest (what was confirmed is what runs).
  - With O(report), prints what an operator follows (under any stdout callback, as it happens) - the
    start with the command that cancels it, a progress line while it runs, then its log lines and
    its result - and returns the run's summary line and, when it did not succeed, why (RV(failure)).
  - Cancelling an execution that has already finished changes nothing.
  - The Cloud Run API has no command override. O(command) is accepted only to refuse it clearly.
version_added: 0.1.0
author: CloudAct platform team (!UNKNOWN)
options:
  job:
    description: The Cloud Run job's ID (not the full resource name).
    type: str
    required: true
  name:
    description:
      - The execution's ID (C(<job>-xxxxx)); required for O(state=cancelled).
      - With O(state=present), the existing execution to report on or wait for.
    type: str
  state:
    description:
      - C(present) starts an execution (or reads O(name)); C(cancelled) cancels O(name).
    type: str
    choices: [present, cancelled]
    default: present
  location:
    description: The region of the job; by default the environment's (C(cloudact_gcp_region)).
    type: str
    aliases: [region]
  args:
    description: Replace the container's arguments for this execution.
    type: list
    elements: str
  clear_args:
    description: Run without the job's arguments.
    type: bool
    default: false
  env:
    description: Environment variables merged over the job's for this execution (plain values, never secrets).
    type: dict
  task_count:
    description: Number of tasks of this execution.
    type: int
  timeout:
    description: Task timeout of this execution, as seconds or C(600s), C(15m), C(1h).
    type: str
  run_id:
    description:
      - The id of this run, sent in the overrides' env as C(CLOUDACT_RUN_ID); empty makes a new one.
      - After a lost answer the execution carrying it is adopted instead of starting another.
    type: str
    default: ""
  confirmed_digest:
    description:
      - The image digest (C(sha256:...)) the operator confirmed. When the job's image is another
        digest (or no digest), nothing is started and the action fails naming both.
    type: str
    default: ""
  if_running:
    description:
      - When starting and an execution of the job is already running (or pending), C(start) starts
        another anyway (as Cloud Scheduler would); C(fail) refuses, naming the running ones (RV(running)).
    type: str
    choices: [start, fail]
    default: start
  running_hint:
    description: Text appended to the refusal of O(if_running=fail), e.g. how to cancel the running one.
    type: str
    default: ""
  command:
    description: Not supported by the Cloud Run API; any value is refused with an explanation.
    type: list
    elements: str
  wait:
    description: Wait until the execution has finished, at most O(wait_timeout) seconds.
    type: bool
    default: false
  wait_timeout:
    description:
      - Seconds to wait. When they pass the action returns RV(done=false) without failing (RV(ok) is
        then false, and RV(failure) says it has not finished).
      - By default the execution's own budget - its task timeout times its attempts (retries + 1)
        times its waves of tasks, plus 60 s - when starting or reading; 30 s for a cancel.
    type: float
  poll_interval:
    description: Seconds between polls while waiting (the first polls come sooner, from 0.1 s up by half).
    type: float
    default: 2
  progress_interval:
    description:
      - Seconds between progress lines (state, task counts, elapsed) while waiting, with O(report).
      - A waited start says which execution it started after its first min(5, this) seconds.
    type: float
    default: 10
  logs:
    description:
      - When the execution has finished in this call, also return its log entries (RV(log_entries),
        RV(log_lines)) and its summary line (RV(summary)), so that waiting and reading the result take
        one call.
    type: bool
    default: false
  report:
    description:
      - >-
        Print the operator's lines as they happen - the start (C(<job>: started <execution>), with the
        C(make cancel) command while it runs, and any lost answer), a progress line every
        O(progress_interval) seconds, then the log lines and the result line
        (C(<job>: <execution> succeeded in 1.2s: <summary>)); in check mode, what it would start.
      - The job is named by its catalog shortcut, the commands by the environment's word.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    details: >-
      A start in check mode reads the job and checks the confirmed digest and running executions,
      then starts nothing and says what it would start; a cancel cancels nothing.
  diff_mode:
    support: full
    details: >-
      A start shows the job and the overrides of the run (and the execution started); a cancel the
      execution's state before and after.
extends_documentation_fragment:
  - cloudact.gcp.gcp.environment
  - ansible.builtin.action_common_attributes
seealso:
  - module: cloudact.gcp.cloud_run_execution_info
  - module: cloudact.gcp.cloud_logging_entries_info
"""

EXAMPLES = r"""
- name: Start bootstrap, wait for it with progress lines, print its log lines and result
  cloudact.gcp.cloud_run_execution:
    job: cloudact-manual-bootstrap
    confirmed_digest: "{{ cloudact_confirmed_digest }}"
    if_running: fail
    wait: true
    logs: true
    report: true
  register: bootstrap

- name: Fail naming why when it did not succeed
  ansible.builtin.fail:
    msg: "{{ bootstrap.failure }}"
  when: not bootstrap.ok

- name: Start it and return at once
  cloudact.gcp.cloud_run_execution:
    job: cloudact-manual-bootstrap
  register: started

- name: Cancel it
  cloudact.gcp.cloud_run_execution:
    job: cloudact-manual-bootstrap
    name: "{{ started.execution.name }}"
    state: cancelled
"""

RETURN = r"""
execution:
  description: The execution (absent in check mode when it would have been started).
  returned: success
  type: dict
  contains:
    name: {description: The execution ID., type: str, returned: always}
    job: {description: The job ID., type: str, returned: always}
    state:
      description: PENDING, RUNNING, CANCELLING, SUCCEEDED, FAILED or CANCELLED.
      type: str
      returned: always
    task_count: {description: Tasks of the execution., type: int, returned: always}
    running: {description: Tasks running., type: int, returned: always}
    succeeded: {description: Tasks that succeeded., type: int, returned: always}
    failed: {description: Tasks that failed (after their retries)., type: int, returned: always}
    cancelled: {description: Tasks cancelled., type: int, returned: always}
    retried: {description: Task attempts that were retried., type: int, returned: always}
    create_time: {description: RFC 3339 creation time., type: str, returned: always}
    start_time: {description: RFC 3339 start time., type: str, returned: when started}
    completion_time: {description: RFC 3339 completion time., type: str, returned: when finished}
    elapsed_seconds:
      description: Seconds since start (to completion when finished).
      type: float
      returned: always
    timeout: {description: The task timeout of this execution (C(600s))., type: str, returned: always}
    max_retries: {description: Retries per task., type: int, returned: always}
    message: {description: The Completed condition's message (why it failed)., type: str, returned: always}
    reason: {description: The Completed condition's execution reason., type: str, returned: always}
    trigger: {description: "C(manual) when the toolkit started it, else empty.", type: str, returned: always}
    run_id:
      description: The toolkit's id of the run (C(CLOUDACT_RUN_ID)), else empty.
      type: str
      returned: always
done:
  description: Whether the execution has finished (always true after a cancel).
  returned: success
  type: bool
server_time:
  description: The API's clock (its Date header) at the last reply, RFC 3339.
  returned: success
  type: str
lost_answers:
  description: One line per answer lost on the way (what was looked for, and what was adopted or resent).
  returned: success
  type: list
  elements: str
log_entries:
  description:
    - The execution's log entries, oldest first (timestamp, severity, message, execution, task_index,
      attempt), as cloud_logging_entries_info returns them.
  returned: when O(logs=true) and the execution has finished
  type: list
  elements: dict
log_lines:
  description: The entries as C(<time> <severity> <message>) lines.
  returned: when O(logs=true) and the execution has finished
  type: list
  elements: str
ok:
  description:
    - Whether the run did what was asked - the execution succeeded (when waited for, or read when
      finished); it started (not waiting); it would start (check mode).
  returned: with O(state=present)
  type: bool
summary:
  description: The job's own summary line among its log messages (with O(logs)), else empty.
  returned: with O(state=present)
  type: str
  sample: "Bootstrap completed: 9 tables synced"
failure:
  description:
    - When RV(ok) is false, why, named (cancelled, task timeout, missing secret, non-zero exit,
      retries exhausted, not finished) with the C(make logs) command that shows its lines; else empty.
  returned: with O(state=present)
  type: str
shortcut:
  description: The job's catalog shortcut (its ID when the catalog has no such job), as the lines name it.
  returned: with O(state=present)
  type: str
  sample: bootstrap
running:
  description: The running executions a refusal of O(if_running=fail) names.
  returned: when refused by O(if_running=fail)
  type: list
  elements: str
msg:
  description: In check mode, what would have been done.
  returned: in check mode, when something would change
  type: str
diff:
  description: Before and after (a start - the job, its overrides and the execution; a cancel - the state).
  returned: in diff mode
  type: dict
"""
