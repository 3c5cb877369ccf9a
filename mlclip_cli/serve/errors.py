"""The one error type of the server's request handling: a user-caused problem with its HTTP status."""

from __future__ import annotations

from mlclip_cli.errors import MlclipError


class RequestError(MlclipError):
    """A bad request: `status` is the HTTP status (4xx) it is answered with, the message one line."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
