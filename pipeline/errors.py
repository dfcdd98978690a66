"""The one exception type users see: a message naming the file and the problem.

The CLI prints it as `error: ...` and exits non-zero; anything else is a bug and
keeps its traceback.
"""


class UserError(Exception):
    """Bad input or configuration, explained in words a user can act on."""
