"""Who may see a console page and which forms are accepted.

A page asks for `SignedIn` (any role) or `AuditorOnly`; without a live session
the reader is sent to the sign-in form, with the wrong role they get the 403
page. A POST is read by `posted_form`: only a small urlencoded body, only from
this site (`Sec-Fetch-Site`/`Origin`), and it must carry the CSRF token its
form was given (`check_csrf`)."""

from __future__ import annotations

import hmac
from typing import Annotated
from urllib.parse import parse_qs

from fastapi import Depends, Request

from settlement.api.auth import AUDITOR, role_of
from settlement.api.config import Config
from settlement.console.sessions import Session, SessionStore

SESSION_COOKIE = "settlement_console_session"
FORM_BYTES_MAX = 4_096
FORM_FIELDS_MAX = 8


class SignInRequired(Exception):
    """No live session: the reader is sent to the sign-in form."""


class Refused(Exception):
    """The 403 page: the wrong role (`reason` "role") or a refused form ("csrf")."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def sessions_of(request: Request) -> SessionStore:
    store: SessionStore = request.app.state.sessions
    return store


def current_session(request: Request, config: Config) -> Session | None:
    """The request's live session whose token is still configured with its role."""
    store = sessions_of(request)
    session_id = request.cookies.get(SESSION_COOKIE)
    session = store.get(session_id)
    if session is not None and role_of(session.token, config.tokens) != session.role:
        store.close(session_id)  # the token was revoked or given another role
        session = None
    return session


async def signed_in(request: Request, config: Config) -> Session:
    session = current_session(request, config)
    if session is None:
        raise SignInRequired()
    request.state.session = session  # for the page's header (role, sign-out form)
    return session


async def auditor_only(session: Annotated[Session, Depends(signed_in)]) -> Session:
    if session.role != AUDITOR:
        raise Refused("role")
    return session


SignedIn = Annotated[Session, Depends(signed_in)]
AuditorOnly = Annotated[Session, Depends(auditor_only)]


def same_site(request: Request) -> bool:
    """Whether the browser says the request comes from this site. Browsers send
    `Sec-Fetch-Site` (and `Origin` on a POST); a request naming another site is
    refused even before the SameSite cookie would have kept it out."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin is None:
        return True
    host = request.headers.get("host", "")
    return origin.partition("://")[2] == host and host != ""


async def posted_form(request: Request) -> dict[str, str]:
    """The POSTed urlencoded fields (first value of each); Refused when the
    request comes from another site or the body is too large or of another type."""
    if not same_site(request):
        raise Refused("csrf")
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    declared = request.headers.get("content-length", "")  # none when chunked: refused
    if kind != "application/x-www-form-urlencoded" or not declared.isdigit() \
            or int(declared) > FORM_BYTES_MAX:
        raise Refused("csrf")
    body = await request.body()
    if len(body) > FORM_BYTES_MAX:
        raise Refused("csrf")
    try:
        fields = parse_qs(body.decode(), max_num_fields=FORM_FIELDS_MAX)
    except (UnicodeDecodeError, ValueError) as exc:
        raise Refused("csrf") from exc
    return {name: values[0] for name, values in fields.items()}


def check_csrf(form: dict[str, str], expected: str | None) -> None:
    given = form.get("csrf", "")
    if not expected or not given or not hmac.compare_digest(given.encode(), expected.encode()):
        raise Refused("csrf")
