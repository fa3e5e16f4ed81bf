"""The one exception type for mistakes a user can fix; the CLI prints it as one line."""


class CharRNNError(Exception):
    """A user-facing error: bad input, a missing file, an impossible setting."""
