"""Settings, read once from the environment (prefix INTERVIEWER_)."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent
RUBRICS_DIR = ROOT / "rubrics"
MODELS_DIR = ROOT / "models"
DEFAULT_DOC = RUBRICS_DIR / "transformers_llms.md"


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "interviewer"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="INTERVIEWER_", extra="ignore")

    data_dir: Path = Field(default_factory=_default_data_dir, description="Database, assembled models, caches")
    profile: str = Field("standard", description="Model profile from models/manifest.toml")
    judge_path: Path | None = Field(None, description="Use this GGUF file as the judge instead of the profile's")
    embedder_path: Path | None = Field(None, description="Use this sentence-transformers directory instead")
    calibration: Path | None = Field(None, description="Calibration file; default models/calibration-<profile>.json")
    database_url: str | None = Field(None, description="SQLAlchemy URL; default SQLite in data_dir")
    doc: Path = Field(DEFAULT_DOC, description="Default question document")
    threads: int = Field(default_factory=lambda: max(1, min(os.cpu_count() or 1, 8)))
    judge_context: int = 2048
    max_answer_words: int = 500
    workers: int = Field(1, description="Grading worker threads in the API")
    queue_size: int = Field(16, description="Grading requests waiting before the API answers 429")
    cors_origins: list[str] = Field(default_factory=list)

    @property
    def database(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'interviewer.db'}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
