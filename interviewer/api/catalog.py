"""The question documents the server offers, by name (the file's stem).

Clients name documents, never paths, so a request cannot make the server read an arbitrary
file. Offered: the configured default document, every `*.md` in the rubrics directory and in
`<data_dir>/documents/`. Files added there or removed appear without a restart (the listing is
kept for a second, as every request looks a document up, unless it names a file not there).
"""

from __future__ import annotations

import time
from pathlib import Path

from ..bank import Document
from ..config import RUBRICS_DIR, Settings
from ..errors import InterviewerError
from ..service import Engine
from .errors import NotFound

LISTING_TTL_S = 1.0


class Catalog:
    def __init__(self, settings: Settings, engine: Engine):
        self.settings, self.engine = settings, engine
        self.default = Path(settings.doc).expanduser().resolve()
        self._listing: tuple[float, dict[str, Path]] = (-LISTING_TTL_S, {})  # (when, name -> path)

    def paths(self, *, fresh: bool = False) -> dict[str, Path]:
        when, found = self._listing
        if fresh or time.monotonic() - when >= LISTING_TTL_S:
            found = {self.default.stem: self.default}
            for folder in (RUBRICS_DIR, self.settings.data_dir / "documents"):
                for path in sorted(folder.glob("*.md")) if folder.is_dir() else ():
                    found.setdefault(path.stem, path.resolve())
            self._listing = (time.monotonic(), found)
        return dict(found)

    def path(self, name: str | None) -> Path:
        """The document's path; the default document when `name` is None."""
        if name is None:
            return self.default
        path = self.paths().get(name)
        if path is None or not path.exists():  # added or removed since the listing
            path = self.paths(fresh=True).get(name)
        if path is None:
            raise NotFound(f"no document {name!r}; documents: {', '.join(self.paths())}")
        return path

    def document(self, name: str | None) -> Document:
        return self.engine.document(self.path(name))

    def documents(self) -> list[Document]:
        """Every offered document that parses (a malformed one is left out, not an error)."""
        out = []
        for path in self.paths().values():
            try:
                out.append(self.engine.document(path))
            except InterviewerError:
                continue
        return out
