"""The API's configuration (`ApiConfig`) and the dependencies that hand it to a
route: `create_app` keeps it on `app.state`, so routes ask FastAPI for it."""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Request

from settlement.api.database import DatabaseLimits
from settlement.projections.storage.schema import LIVE_SCHEMA


@dataclass
class ApiConfig:
    database_url: str
    tokens: dict[str, str] = field(repr=False)  # credential (token or sha256:<hex>) → role
    schema: str = LIVE_SCHEMA
    pool_size: int = 8
    limits: DatabaseLimits = field(default_factory=DatabaseLimits)  # every wait's bound
    # Clock for `overdue` (tests pin it).
    now: Callable[[], datetime] = lambda: datetime.now(UTC)


async def app_config(request: Request) -> ApiConfig:
    config: ApiConfig = request.app.state.config
    return config


async def projections_schema(config: Annotated[ApiConfig, Depends(app_config)]) -> str:
    return config.schema


Config = Annotated[ApiConfig, Depends(app_config)]
Schema = Annotated[str, Depends(projections_schema)]  # the schema of the read models
