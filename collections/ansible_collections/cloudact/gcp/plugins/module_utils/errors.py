# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one error type of bad operator input (a catalog entry, an ENV word, ARGS=...).

Raised before anything is sent to a cloud; its text is one line that names the bad value and
what is valid. Filters turn it into AnsibleFilterError, the toolkit CLIs into `error: <text>`.
"""


class InputError(Exception):
    """A bad input, reported to the operator as one line."""
