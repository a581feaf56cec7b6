"""The FastAPI application: `create_app(settings)` wires the services and the routes.

Start-up opens the database (applying migrations), starts loading the models in the
background (`/readyz` says when a test grading has passed) and resumes unfinished batch jobs.
Run it with `interviewer serve`.
"""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from .. import __version__
from ..config import Settings, get_settings
from ..service import Engine
from ..sessions import Interviews
from ..store import Store
from . import errors
from .catalog import Catalog
from .deps import Services
from .jobs import BatchJobs
from .limits import BodyLimit
from .pool import GradingPool
from .readiness import Readiness
from .routes import router

BODY_LIMIT = 64 * 1024  # an answer, with room to spare (the engine gates answers over 500 words)
UPLOAD_LIMIT = 16 * 1024 * 1024  # a batch of recorded answers

DESCRIPTION = """Drive a whole mock interview: pick a question document, start a session, answer
its questions one by one (each answer is graded against the rubric's key points, with citations
to the document, and stored before the response), then read the report. Also: one-off grading,
batch grading jobs and a candidate's history. Errors are always
`{"error": {"code", "message", "details"}}`."""


def build(settings: Settings, engine: Engine | None = None) -> Services:
    engine = engine or Engine(settings)
    store = Store.for_settings(settings)
    pool = GradingPool(settings.workers, settings.queue_size)
    return Services(settings=settings, engine=engine, store=store, interviews=Interviews(engine, store),
                    catalog=Catalog(settings, engine), pool=pool, jobs=BatchJobs(engine, store, pool),
                    readiness=Readiness(engine))


def create_app(settings: Settings | None = None, *, engine: Engine | None = None,
               load_models: bool = True) -> FastAPI:
    """The app. `engine` replaces the real one (tests); `load_models=False` skips the start-up
    load and test grading (`/readyz` then stays 'loading')."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        services = app.state.services = build(settings, engine)
        if load_models:
            services.readiness.start()
        services.jobs.start()
        try:
            yield
        finally:
            services.jobs.stop()
            services.pool.shutdown()
            services.store.close()

    app = FastAPI(title="interviewer", version=__version__, description=DESCRIPTION, lifespan=lifespan)
    errors.install(app)
    app.include_router(router)
    app.add_middleware(BodyLimit, default=BODY_LIMIT, paths={"/batch-jobs": UPLOAD_LIMIT})
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["*"],
                           allow_headers=["Authorization", "Content-Type"], expose_headers=["Retry-After"])
    return app
