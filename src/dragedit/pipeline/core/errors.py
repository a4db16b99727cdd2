"""The core's typed errors. Their messages name no command-line flag and no HTTP field: a `FieldError`
carries the setting or request field it is about, and each front end words it in its own language (the
CLI as `--feature-block`, the server as `"from"`)."""
from __future__ import annotations

from dragedit.common.errors import FieldError, UserError


class SettingError(FieldError):
    """A setting (generator, device, threads, PTI, drag or composite) that cannot work."""


class RequestError(FieldError):
    """An edit request (drags, mask, from, face) that does not fit the photo or the session."""


class SessionBusy(UserError):
    """Another process or job holds the session (HTTP 409)."""


class SessionMismatch(UserError):
    """The session belongs to another photo or face; nothing in it was changed (exit 2, HTTP 409)."""


class WouldOverwrite(UserError):
    """An output path that is the input photo, without leave to replace it."""


class NotASession(UserError):
    """A folder that is not a dragedit session, or a session without the stage a command needs."""


__all__ = ["FieldError", "NotASession", "RequestError", "SessionBusy", "SessionMismatch", "SettingError",
           "UserError", "WouldOverwrite"]
