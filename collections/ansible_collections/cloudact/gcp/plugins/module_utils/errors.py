# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The error types: bad operator input, and an API call that failed for good.

InputError is raised before anything is sent to a cloud; its text is one line that names the bad
value and what is valid. Filters turn it into AnsibleFilterError, the toolkit CLIs into `error:
<text>`. ApiError is the one client's (module_utils/client.py raises it); it lives here, with the
standard library only, so a CLI can catch it without importing the client's HTTP stack.
"""


class InputError(Exception):
    """A bad input, reported to the operator as one line."""


class ApiError(Exception):
    """A call that failed for good: `str()` names the resource and carries the API's message."""

    def __init__(self, message, status=None, reason=None):
        super().__init__(message)
        self.status = status
        self.reason = reason
