"""Pages and downloads: Jinja2 templates (autoescaped: an id or a name is text,
never markup), the language of each page, links to the same page with other
parameters, and CSV downloads in the API's own format (`settlement.api.render`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, PackageLoader, StrictUndefined

from settlement.api.render import CSV, NEXT_AFTER, amount, to_csv
from settlement.console import formatting, i18n

LANG_COOKIE_SECONDS = 365 * 24 * 3600

ENV = Environment(loader=PackageLoader("settlement.console", "templates"), autoescape=True,
                  undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                  auto_reload=False)
ENV.filters.update(money=formatting.money, percent=formatting.percent, exact=amount,
                   instant=formatting.instant, count=formatting.count,
                   path=lambda v: quote(str(v), safe=":"))


def base(request: Request) -> str:
    """Where the console is mounted (`/console`): its links start there."""
    return str(request.scope.get("root_path", ""))


def cookie_path(request: Request) -> str:
    return base(request) or "/"


def language(request: Request) -> str:
    return i18n.choose(request.query_params.get("lang"), request.cookies.get(i18n.COOKIE),
                       request.headers.get("accept-language"))


def here(request: Request, **changes: Any) -> str:
    """This page's address with some parameters changed (None removes one)."""
    params = {k: v for k, v in request.query_params.items() if k not in changes}
    params |= {k: str(v) for k, v in changes.items() if v is not None and v != ""}
    query = urlencode(params)
    return quote(request.url.path, safe="/:") + (f"?{query}" if query else "")


def is_tls(request: Request) -> bool:
    return request.url.scheme == "https"


def page(request: Request, template: str, *, status_code: int = 200,
         **context: Any) -> HTMLResponse:
    lang = language(request)
    html = ENV.get_template(template).render(
        t=i18n.translator(lang), lang=lang, base=base(request),
        session=getattr(request.state, "session", None), params=request.query_params,
        query=urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "lang"]),
        here=lambda **changes: here(request, **changes), **context)
    response = HTMLResponse(html, status_code=status_code)
    if request.query_params.get("lang") in i18n.LANGUAGES:  # the switch: remember it
        response.set_cookie(i18n.COOKIE, lang, max_age=LANG_COOKIE_SECONDS,
                            path=cookie_path(request), httponly=True, samesite="strict",
                            secure=is_tls(request))
    return response


def csv_download(columns: Sequence[str], rows: Sequence[Mapping[str, Any]], name: str,
                 next_after: str | None = None) -> Response:
    """The rows as the API writes them for `Accept: text/csv`, as a file to save."""
    headers = {"Content-Disposition": f'attachment; filename="{name}.csv"'}
    if next_after is not None:
        headers[NEXT_AFTER] = next_after
    return Response(to_csv(columns, rows), media_type=CSV, headers=headers)
