"""Load the models once, in the background at start-up, and prove them with a test grading."""

from __future__ import annotations

import gc
import logging
import threading
import time

from ..service import Engine, background_thread

log = logging.getLogger("interviewer.api")


class Readiness:
    """`status` is loading, then ready (a test grading passed with the judge) or failed."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.status, self.detail = "loading", "loading models"
        self.load_seconds: float | None = None

    def start(self) -> threading.Thread:
        def run():
            background_thread()  # the loading and the test grading give way to requests
            self.check()

        thread = threading.Thread(target=run, name="load-models", daemon=True)
        thread.start()
        return thread

    def check(self) -> None:
        started = time.monotonic()
        try:
            self.engine.load()
            document = self.engine.document()
            question = next(iter(document.questions.values()))
            result = self.engine.grade(question.id, question.short_answer)
            judge_status = result.provenance.judge_status
            if judge_status.startswith("skipped"):  # the embedding decided every point: prove the judge alone
                rubric = self.engine.rubric().for_question(question.id)
                judge_status = self.engine.judge_signals(rubric, question.short_answer)[1]
            if judge_status != "ok":
                self.status, self.detail = "failed", f"judge {judge_status}"
            else:
                self.status = "ready"
                self.detail = f"test grading of {question.id} scored {result.score}"
        except Exception as exc:  # any failure: not ready, and say why
            self.status, self.detail = "failed", f"{exc.__class__.__name__}: {exc}"
        # The libraries and models just loaded are millions of long-lived objects: moved out of
        # the collector's reach, its full collections no longer pause requests for tens of ms.
        gc.freeze()
        self.load_seconds = round(time.monotonic() - started, 2)
        log.log(logging.INFO if self.status == "ready" else logging.ERROR, "models %s in %.1f s: %s",
                self.status, self.load_seconds, self.detail)

    @property
    def ready(self) -> bool:
        return self.status == "ready"
