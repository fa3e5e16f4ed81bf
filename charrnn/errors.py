"""The one exception type for mistakes a user can fix; the CLI prints it as one line."""

from __future__ import annotations


class CharRNNError(Exception):
    """A user-facing error: bad input, a missing file, an impossible setting.

    `fields` names the settings (config fields) the message mentions by their field names; a front end
    renders each as what its user typed (the CLI: the field's flag).
    """

    def __init__(self, message: str, *fields: str) -> None:
        super().__init__(message)
        self.fields = fields
