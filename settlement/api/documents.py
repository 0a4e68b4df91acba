"""PDF answers (invoices, payment statements, SPEC §12): the render served with
its SHA-256, and refused when it no longer matches the copy stored for it."""

from __future__ import annotations

from fastapi.responses import Response

from settlement.api.database import Database
from settlement.api.render import ApiError
from settlement.documents import pdf
from settlement.store import documents


def pdf_response(db: Database, kind: str, key: str, content: bytes, what: str) -> Response:
    """`content` (the PDF of document `kind`/`key`, `what` names it in an error)
    as a download; 500 `document_changed` if a stored copy differs."""
    sha256 = pdf.sha256(content)
    with db.connection() as conn:
        kept = documents.stored(conn, kind, key)
    if kept is not None and kept.sha256 != sha256:
        raise ApiError(500, "document_changed", f"{what} no longer renders as stored")
    return Response(content, media_type="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="{key}.pdf"',
        "X-Content-SHA256": sha256})
