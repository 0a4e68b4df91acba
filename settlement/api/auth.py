"""Who may read what: a bearer token (`SETTLEMENT_API_TOKENS`) names a role;
finance and auditors read the finance endpoints, only auditors the audit ones.
Routes ask for `Reader` or `Auditor`, which answer 401 or 403 before anything
else is read.

Tokens are configured plain (`token:role`) or, recommended, as the SHA-256 digest
of the token (`sha256:<hex>:role`); either way a presented token is compared by
its digest, so the comparison takes the same time whatever the token's length."""

import hashlib
import hmac
from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from settlement.api.config import Config
from settlement.api.render import ApiError
from settlement.infra.config import token_digest

FINANCE, AUDITOR = "finance", "auditor"

bearer = HTTPBearer(auto_error=False, description="`SETTLEMENT_API_TOKENS` token")


def role_of(token: str, tokens: dict[str, str]) -> str | None:
    """The role `token` names in `tokens` (credential → role), or None. Every known
    credential is compared, digest against digest in constant time, so the
    answer's timing does not tell how close a guess was."""
    presented = hashlib.sha256(token.encode()).hexdigest().encode()
    found = None
    for credential, known_role in tokens.items():
        if hmac.compare_digest(presented, token_digest(credential).encode()):
            found = known_role
    return found


# The dependencies are `async` although they never wait: a plain `def` dependency
# is run in the thread pool, a hop there and back per request for a hash and a
# comparison (with the route's own, three hops a request instead of one).
async def role(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
         config: Config) -> str:
    token = credentials.credentials if credentials else ""
    found = role_of(token, config.tokens)
    if not token or found is None:
        raise ApiError(401, "unauthorized", "a valid bearer token is required")
    return found


async def reader(role_: Annotated[str, Depends(role)]) -> str:
    return role_  # finance and auditors read the finance endpoints


async def auditor(role_: Annotated[str, Depends(role)]) -> str:
    if role_ != AUDITOR:
        raise ApiError(403, "forbidden", "only the auditor role may read audit endpoints")
    return role_


Reader = Annotated[str, Depends(reader)]
Auditor = Annotated[str, Depends(auditor)]
