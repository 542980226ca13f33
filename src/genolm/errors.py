"""User-facing errors.

Every problem caused by the user's input (a missing file, a bad letter, an empty corpus,
a sequence the model cannot hold) raises :class:`GenolmError` with one message that names
the file and record. Entrypoints print that message on one line and exit non-zero.
"""


class GenolmError(Exception):
    """An error in the user's input or configuration, reported without a traceback."""
