"""What routes depend on: the process's services, and the session a bearer token opens."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ..config import Settings
from ..service import Engine
from ..sessions import Interviews
from ..store import SessionRecord, Store
from .catalog import Catalog
from .jobs import BatchJobs
from .pool import GradingPool
from .readiness import Readiness


@dataclass
class Services:
    """Everything a request may use; built once per process at start-up."""

    settings: Settings
    engine: Engine
    store: Store
    interviews: Interviews
    catalog: Catalog
    pool: GradingPool
    jobs: BatchJobs
    readiness: Readiness


async def services(request: Request) -> Services:  # async: no thread hop for a lookup
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(services)]

bearer = HTTPBearer(auto_error=False, description="The session's token, returned once when it was created")


def session(services: ServicesDep,
            session_id: Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="The session's id")],
            credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> SessionRecord:
    """The session, if the bearer token is its own; 404 otherwise (as for an unknown id)."""
    return services.interviews.authorize(session_id, credentials.credentials if credentials else None)


SessionDep = Annotated[SessionRecord, Depends(session)]
