"""Signing in and out. The sign-in form exchanges a bearer token for a session
cookie (HttpOnly, SameSite=Strict, Secure over TLS, expiring); the token goes
in the POST body only, and is never written back to a page, an address or a
log. Before a session exists the form's CSRF token is a random value also set
as a cookie (double submit); after, each session has its own."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from settlement.api.auth import role_of
from settlement.api.config import Config
from settlement.console.guard import (
    SESSION_COOKIE,
    SignedIn,
    check_csrf,
    current_session,
    posted_form,
    sessions_of,
)
from settlement.console.render import base, cookie_path, is_tls, page
from settlement.console.sessions import new_secret
from settlement.infra.logging import get_logger

router = APIRouter()
SIGN_IN_COOKIE = "settlement_console_signin"  # the sign-in form's CSRF token
SIGN_IN_SECONDS = 3600  # how long a sign-in form stays usable
NEXT_LENGTH_MAX = 2_000


def next_page(request: Request, asked: str | None) -> str:
    """Where to go after signing in: a page of the console, never another site."""
    home = f"{base(request)}/"
    if not asked or len(asked) > NEXT_LENGTH_MAX or not asked.startswith(home) \
            or any(part in asked for part in ("\\", "//", "..")):
        return home
    return asked


@router.get("/sign-in")
def sign_in_form(request: Request, config: Config) -> Response:
    if current_session(request, config) is not None:
        return RedirectResponse(next_page(request, request.query_params.get("next")), 303)
    return _form(request, 200)


def _form(request: Request, status: int, refused: bool = False,
          asked: str | None = None) -> Response:
    csrf = new_secret()
    response = page(request, "sign_in.html", status_code=status, csrf=csrf, refused=refused,
                    next=next_page(request, asked or request.query_params.get("next")),
                    ended=request.query_params.get("ended") == "1",
                    signed_out=request.query_params.get("signed_out") == "1")
    response.set_cookie(SIGN_IN_COOKIE, csrf, max_age=SIGN_IN_SECONDS, path=cookie_path(request),
                        httponly=True, samesite="strict", secure=is_tls(request))
    return response


@router.post("/sign-in")
async def sign_in(request: Request, config: Config) -> Response:
    form = await posted_form(request)
    check_csrf(form, request.cookies.get(SIGN_IN_COOKIE))
    log = get_logger(component="console")
    token = form.get("token", "").strip()
    role = role_of(token, config.tokens) if token else None
    if role is None:
        log.info("console.sign_in_refused")  # never the token
        return _form(request, 401, refused=True, asked=form.get("next"))
    session_id, _ = sessions_of(request).open(role, token)
    log.info("console.signed_in", role=role)
    response = RedirectResponse(next_page(request, form.get("next")), status_code=303)
    response.set_cookie(SESSION_COOKIE, session_id, max_age=sessions_of(request).lifetime_seconds,
                        path=cookie_path(request), httponly=True, samesite="strict",
                        secure=is_tls(request))
    response.delete_cookie(SIGN_IN_COOKIE, path=cookie_path(request))
    return response


@router.post("/sign-out")
async def sign_out(request: Request, session: SignedIn) -> Response:
    form = await posted_form(request)
    check_csrf(form, session.csrf)
    sessions_of(request).close(request.cookies.get(SESSION_COOKIE))
    get_logger(component="console").info("console.signed_out", role=session.role)
    response = RedirectResponse(f"{base(request)}/sign-in?signed_out=1", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path=cookie_path(request), httponly=True,
                           samesite="strict", secure=is_tls(request))
    return response
