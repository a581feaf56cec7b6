"""Shared fixtures. Unit tests use fakes (real implementations of the seams); the real tiny
and standard models run in the default suite too (marked `real` / `standard`)."""

from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from interviewer.api.app import create_app
from interviewer.config import DEFAULT_DOC, Settings
from interviewer.embed import HashingEmbedder
from interviewer.judge import KeywordJudge
from interviewer.service import Engine

ROOT = Path(__file__).resolve().parent.parent
EVAL = ROOT.parent / "shared" / "eval"
ADVERSARIAL = yaml.safe_load((ROOT / "tests" / "adversarial" / "answers.yaml").read_text())


@pytest.fixture
def settings(tmp_path) -> Settings:
    """Default settings, with a throw-away data directory for anything the test writes."""
    from interviewer.config import get_settings

    real = get_settings()
    return real.model_copy(update={"database_url": f"sqlite:///{tmp_path / 'test.db'}"})


@pytest.fixture
def fake_engine(settings) -> Engine:
    return Engine(settings, profile="tiny", embedder=HashingEmbedder(), judge=KeywordJudge())


@pytest.fixture(scope="session")
def tiny_engine() -> Engine:
    from interviewer.config import get_settings

    return Engine(get_settings(), profile="tiny")


@pytest.fixture(scope="session")
def standard_engine() -> Engine:
    from interviewer.config import get_settings

    return Engine(get_settings(), profile="standard")


@pytest.fixture(scope="session")
def seed_doc() -> Path:
    return DEFAULT_DOC


@contextmanager
def serving(settings, engine, **updates):
    """A started app (lifespan run) whose models are loaded and test grading passed."""
    settings = settings.model_copy(update=updates)
    with TestClient(create_app(settings, engine=engine)) as client:
        wait_ready(client)
        yield client


def wait_ready(client, timeout=10.0):
    deadline = time.monotonic() + timeout
    while client.get("/readyz").status_code != 200:
        assert time.monotonic() < deadline, client.get("/readyz").json()
        time.sleep(0.02)


@pytest.fixture
def client(settings, fake_engine):
    with serving(settings, fake_engine) as c:
        yield c
