"""Domain errors. Operations raise them with a French message; `kb.create_app` maps them once
to an HTTP answer (a French page, or JSON under /api/), so views need not translate them.

Messages are written lower-case without a final period (they are also used inside sentences);
`message` gives the sentence shown to people.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from werkzeug.datastructures import Headers

REQUEST_ID = "X-Request-Id"
_SANE_ID = re.compile(r"[A-Za-z0-9._:-]{8,80}")


def request_id_from(headers: Headers) -> str:
    """The id an answer and its log lines share: the proxy's when it sent a sane one."""
    incoming = headers.get(REQUEST_ID, "")
    return incoming if _SANE_ID.fullmatch(incoming) else uuid.uuid4().hex


class KbError(Exception):
    """A refused request. `status` and `code` are its HTTP status and JSON `error` value;
    `extra` is added to the JSON body (field names, ids: never text the caller may not see)."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str = "", **extra: Any):
        super().__init__(message)
        self.extra = extra

    @property
    def message(self) -> str:
        text = str(self).strip() or "la requête n'a pas pu être traitée"
        text = text[0].upper() + text[1:]
        return text if text.endswith((".", "!", "?", "»")) else text + "."


class NotAuthenticated(KbError):
    status = 401
    code = "unauthorized"


class PermissionDenied(KbError):
    status = 403
    code = "forbidden"


class NotFound(KbError):
    status = 404
    code = "not_found"


class LinkError(KbError):
    """An unusable link from a mail: 404 when it never was valid, 410 when it was once (used,
    expired), 403 when it was sent to someone else. `gone`: the 410 case."""

    code = "invalid_link"

    def __init__(self, message: str, status: int = 404):
        super().__init__(message)
        self.status = status

    @property
    def gone(self) -> bool:
        return self.status == 410


class TooManyRequests(KbError):
    """A limit per person or client reached (questions per day...): come back later."""

    status = 429
    code = "too_many_requests"


# Invalid and Conflict are also ValueErrors: callers that only need "refused, with a message"
# catch ValueError.
class Conflict(KbError, ValueError):
    """The request is valid but clashes with the current state (already decided, changed since)."""

    status = 409
    code = "conflict"


class Invalid(KbError, ValueError):
    status = 422
    code = "validation"


class ValidationError(Invalid):
    """Bad data, field by field: `errors` maps a field name to a French message (JSON: `fields`)."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()), fields=errors)
        self.errors = errors

    @property
    def message(self) -> str:
        return "Données invalides."
