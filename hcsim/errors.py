"""The one exception type for bad input.

Every user-facing failure (a malformed history, an unknown strategy, VMM,
parameter or format, an impossible value) raises :class:`InputError`; the
command line turns it into one line ``hcsim: error: ...`` and exit code 2.
"""


class InputError(ValueError):
    """Bad input: a message naming the file, entry or parameter at fault."""
