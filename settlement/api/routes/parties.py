"""`/v1/parties/{party_id}`: a party as the marketplace registered it (SPEC §10),
the account number masked, the address for auditors only."""

from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.responses import Response

from settlement.api import models
from settlement.api.auth import AUDITOR, Reader
from settlement.api.config import Schema
from settlement.api.database import Db
from settlement.api.openapi import ERRORS, NOT_FOUND
from settlement.api.params import ID_PATTERN
from settlement.api.queries import parties as party_queries
from settlement.api.render import ApiError, iso, render

router = APIRouter(tags=["parties"])
FIELDS = ("party_id", "kind", "name", "name_kana", "invoice_registration_number",
          "bank_account", "kyc_verified", "transfer_fee_bearer", "hold", "returned_payout_id")


@router.get("/v1/parties/{party_id}", response_model=models.Party,
            responses={**ERRORS, **NOT_FOUND})
def party(role: Reader, db: Db, schema: Schema,
          party_id: Annotated[str, Path(pattern=ID_PATTERN)]) -> Response:
    """A party: its kind, names, registration number, bank account (masked), KYC,
    transfer fee bearer and hold; the address for the auditor role."""
    with db.connection() as conn:
        found = party_queries.party(conn, schema, party_id)
    if found is None:
        raise ApiError(404, "party_not_found", f"no party {party_id}", "party_id")
    return render(party_body(found, show_address=role == AUDITOR))


def party_body(found: dict[str, Any], show_address: bool) -> dict[str, Any]:
    body = {key: found[key] for key in FIELDS}
    account = body["bank_account"]
    if account is not None:  # masked on the way in; checked again on the way out
        number = str(account.get("account_number", ""))
        body["bank_account"] = {**account, "account_number": "****" + number[-3:]}
    body["address"] = found["address"] if show_address else None
    body["registered_at"], body["updated_at"] = iso(found["registered_at"]), iso(
        found["updated_at"])
    return body
