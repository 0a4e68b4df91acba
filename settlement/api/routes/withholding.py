"""`/v1/withholding?month=YYYY-MM` (per client: what the month's releases
withheld, its due date and 所得税徴収高計算書 data, and its remittances) and
`/v1/withholding/annual?year=YYYY` (the 支払調書 data: per client and individual
worker paid more than ¥50,000 in the year). SPEC §12; JSON or CSV.

The address is personal data (SPEC §10): only the auditor role sees it; for
others it is null (the CSV cell empty).
"""

from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from settlement.api import tax_models
from settlement.api.auth import AUDITOR, Reader
from settlement.api.config import Config
from settlement.api.database import Db
from settlement.api.openapi import CSV_ROWS, ERRORS
from settlement.api.queries import tax as tax_queries
from settlement.api.render import ApiError, amount, render
from settlement.core.errors import InvalidInput
from settlement.tax import withholding as wh

router = APIRouter(tags=["tax documents"])
MONTH_TEXT = r"^[0-9]{4}-[0-9]{2}$"
YEAR_TEXT = r"^[0-9]{4}$"


def _refused(error: InvalidInput, parameter: str) -> ApiError:
    return ApiError(400, error.code, error.message, parameter)


@router.get("/v1/withholding", response_model=tax_models.Withholding,
            responses={**ERRORS, **CSV_ROWS})
def withholding(request: Request, _: Reader, db: Db, config: Config,
                month: Annotated[str, Query(pattern=MONTH_TEXT, description=(
                    "YYYY-MM, a JST month that is over"))]) -> Response:
    """Per client, what the month's releases withheld (each release's own
    withholding, SPEC §5), due by the 10th of the next month (the next business
    day when the 10th is not one), with the 所得税徴収高計算書 data and the
    month's remittances."""
    try:
        chosen = wh.parse_month(month, config.now())
    except InvalidInput as error:
        raise _refused(error, "month") from error
    with db.connection(snapshot=True) as conn:
        releases = tax_queries.withheld_releases(conn, config.schema, chosen)
        remittances = tax_queries.remittances(conn, config.schema, chosen)
    by_client: dict[str, list[dict[str, Any]]] = {}
    for r in remittances:
        by_client.setdefault(r["client_id"], []).append(
            {"remittance_id": r["remittance_id"], "amount": amount(r["amount"]),
             "status": "confirmed" if r["status"] == "settled" else "pending",
             "currency": r["currency"]})
    rows = [_month_row(row, by_client.get(row.client_id, []))
            for row in wh.monthly(releases, chosen)]
    body = {"month": str(chosen), "due_date": wh.due_date(chosen).isoformat(),
            "clients": rows,
            "remittances": {k: [{n: v for n, v in r.items() if n != "currency"} for r in rs]
                            for k, rs in by_client.items()}}
    return render(body, request, rows=rows, row_model=tax_models.MonthlyWithholding)


def _month_row(row: wh.MonthlyWithholding, remitted: list[dict[str, Any]]) -> dict[str, Any]:
    paid = sum((Decimal(r["amount"]) for r in remitted if r["currency"] == row.currency),
               Decimal(0))
    return {"client_id": row.client_id, "currency": row.currency, "month": str(row.month),
            "workers": row.workers, "gross": amount(row.gross),
            "withheld": amount(row.withheld), "releases": row.releases,
            "due_date": row.due_date.isoformat(), "remitted": amount(paid),
            "outstanding": amount(row.withheld - paid)}


@router.get("/v1/withholding/annual", response_model=tax_models.Annual,
            responses={**ERRORS, **CSV_ROWS})
def annual(request: Request, role: Reader, db: Db, config: Config,
           year: Annotated[str, Query(pattern=YEAR_TEXT, description=(
               "YYYY, a JST calendar year that has begun"))]) -> Response:
    """The 支払調書 data: per client and individual worker (SPEC §10 kind
    `individual`) paid more than ¥50,000 in the year, withheld or not: the name
    and address as registered (the address for the auditor role only), gross
    paid tax-included, tax withheld."""
    now = config.now()
    try:
        chosen = wh.parse_year(year, now)
    except InvalidInput as error:
        raise _refused(error, "year") from error
    start, end = wh.Month(chosen, 1).start, wh.Month(chosen + 1, 1).start
    with db.connection(snapshot=True) as conn:
        releases = tax_queries.releases(conn, config.schema, start, end)
        parties = tax_queries.parties(conn, config.schema,
                                      sorted({r.worker_id for r in releases}))
    individuals = [p for p, row in parties.items() if row["kind"] == wh.INDIVIDUAL]
    show_address = role == AUDITOR
    rows = [{"year": chosen, "client_id": p.client_id, "worker_id": p.worker_id,
             "name": parties[p.worker_id]["name"],
             "address": parties[p.worker_id]["address"] if show_address else None,
             "currency": p.currency, "gross": amount(p.gross), "withheld": amount(p.withheld),
             "releases": p.releases}
            for p in wh.annual(releases, chosen, individuals)]
    body = {"year": chosen, "complete": wh.year_over(chosen, now),
            "threshold": amount(wh.ANNUAL_THRESHOLD), "payments": rows}
    return render(body, request, rows=rows, row_model=tax_models.AnnualPayment)
