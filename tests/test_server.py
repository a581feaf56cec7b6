"""A real `interviewer serve` process (tiny models) on a loopback port: a whole interview,
concurrent submissions, and a restart in the middle of a session that loses nothing."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from interviewer.config import get_settings

from .conftest import ADVERSARIAL

pytestmark = pytest.mark.real

BIN = Path(sys.executable).parent / "interviewer"
STRONG = {qid: q["strong"] for qid, q in ADVERSARIAL["questions"].items()}
READY_TIMEOUT_S = 300  # loading is seconds on an idle machine; allow for a busy one


class Server:
    """One `interviewer serve` process; `start` waits until /readyz passes."""

    def __init__(self, data_dir: Path, database_url: str | None = None):
        self.data_dir, self.port = data_dir, _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("INTERVIEWER_")}
        self.env.update(INTERVIEWER_PROFILE="tiny", INTERVIEWER_DATA_DIR=str(data_dir))
        if database_url:
            self.env["INTERVIEWER_DATABASE_URL"] = database_url
        _reuse_model_hashes(data_dir)
        self.proc: subprocess.Popen | None = None
        self.log = data_dir / "server.log"

    def start(self) -> "Server":
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([str(BIN), "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                                         stdout=log, stderr=subprocess.STDOUT, env=self.env)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            assert self.proc.poll() is None, f"server exited:\n{self.log.read_text()}"
            assert time.monotonic() < deadline, f"not ready:\n{self.log.read_text()}"
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.3)

    def kill(self) -> None:
        """As a crash would: no graceful shutdown."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=600)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _reuse_model_hashes(data_dir: Path) -> None:
    """The tiny models are verified already: skip re-hashing ~190 MB per start (keys: path, size, mtime)."""
    known = get_settings().data_dir / "models" / "verified.json"
    if known.exists():
        (data_dir / "models").mkdir(parents=True, exist_ok=True)
        shutil.copy(known, data_dir / "models" / "verified.json")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("served")  # no database URL: the default, created on first start
    s = Server(data_dir)
    try:
        yield s.start()
    finally:
        s.stop()


def start(http: httpx.Client, **body) -> tuple[str, dict]:
    r = http.post("/sessions", json=body)
    assert r.status_code == 201, r.text
    return r.json()["session"]["id"], {"Authorization": f"Bearer {r.json()['token']}"}


def answer(http, sid, auth, qid, use_judge=True) -> dict:
    r = http.post(f"/sessions/{sid}/answer", json={"answer": STRONG[qid], "question_id": qid, "use_judge": use_judge},
                  headers=auth)
    assert r.status_code == 200, r.text
    return r.json()


def test_a_whole_interview_on_a_real_server(server):
    assert (server.data_dir / "interviewer.db").exists()
    with server.client() as http:
        assert http.get("/healthz").json() == {"status": "ok"}
        assert "/sessions/{session_id}/answer" in http.get("/openapi.json").json()["paths"]
        assert http.get("/docs").status_code == 200
        sid, auth = start(http, n_questions=2, candidate="ada")
        results = []
        while (q := http.get(f"/sessions/{sid}/question", headers=auth).json()["question"]) is not None:
            assert q["reference"] is None
            results.append(answer(http, sid, auth, q["id"])["result"])
        assert [r["question_id"] for r in results] == ["Q1", "Q2"]
        for r in results:
            assert r["provenance"]["judge_status"] == "ok" and r["provenance"]["judge"]["id"].startswith("SmolLM2")
            assert 0 < r["score"] <= 10 and r["key_points"][0]["citation"]["quote"]
        report = http.get(f"/sessions/{sid}/report", headers=auth).json()
        assert report["state"] == "finished" and report["answered"] == 2
        assert [i["score"] for i in report["items"]] == [r["score"] for r in results]
        assert all(c["quote"] for c in report["study"])
        assert http.get("/candidates/ada/attempts").json()["total"] == 2


def test_concurrent_submissions_are_all_stored_and_reads_stay_fast(server):
    questions = [f"Q{n}" for n in range(1, 9)]
    judged = {"Q1", "Q2"}  # the others embedding-only: the judge takes seconds per answer on a busy machine
    with server.client() as http:
        sessions = {qid: start(http, questions=[qid], candidate="crowd") for qid in questions}
        statuses: dict[str, int] = {}
        signals: dict[str, list] = {}

        def submit(qid):
            sid, auth = sessions[qid]
            with server.client() as own:
                r = own.post(f"/sessions/{sid}/answer", json={"answer": STRONG[qid], "use_judge": qid in judged},
                             headers=auth)
                statuses[qid] = r.status_code
                signals[qid] = r.json()["result"]["provenance"]["signals"] if r.status_code == 200 else None

        threads = [threading.Thread(target=submit, args=(qid,)) for qid in questions]
        for t in threads:
            t.start()
        slowest_read = 0.0
        while any(t.is_alive() for t in threads):
            started = time.monotonic()
            assert http.get("/questions", params={"q": "attention"}).status_code == 200
            sid, auth = sessions["Q8"]
            assert http.get(f"/sessions/{sid}", headers=auth).status_code == 200
            slowest_read = max(slowest_read, time.monotonic() - started)
            time.sleep(0.2)
        for t in threads:
            t.join()
        assert statuses == {qid: 200 for qid in questions}
        assert signals == {qid: ["embedding", "judge"] if qid in judged else ["embedding"] for qid in questions}
        assert slowest_read < 2.0, f"a read waited {slowest_read:.2f} s behind grading"
        history = http.get("/candidates/crowd/attempts", params={"limit": 100}).json()
        assert history["total"] == 8 and sorted(a["question_id"] for a in history["attempts"]) == sorted(questions)
        for qid, (sid, auth) in sessions.items():
            assert http.get(f"/sessions/{sid}", headers=auth).json()["state"] == "finished"


def test_a_restart_in_the_middle_of_a_session_loses_nothing(tmp_path):
    data_dir = tmp_path / "data"
    url = f"sqlite:///{tmp_path / 'db' / 'interviews.db'}"
    first = Server(data_dir, url)
    try:
        first.start()
        with first.client() as http:
            sid, auth = start(http, n_questions=3, candidate="rex")
            before = answer(http, sid, auth, "Q1", use_judge=False)
        first.kill()
    finally:
        first.stop()

    second = Server(data_dir, url)
    try:
        second.start()
        with second.client() as http:
            session = http.get(f"/sessions/{sid}", headers=auth).json()
            assert (session["position"], session["current_question_id"], session["state"]) == (1, "Q2", "open")
            [stored] = http.get(f"/sessions/{sid}/attempts", headers=auth).json()
            assert stored["result"] == before["result"]
            answer(http, sid, auth, "Q2", use_judge=False)
            answer(http, sid, auth, "Q3", use_judge=False)
            report = http.get(f"/sessions/{sid}/report", headers=auth).json()
            assert report["answered"] == 3 and report["state"] == "finished"
            assert report["items"][0]["score"] == before["result"]["score"]
            assert http.get("/candidates/rex/attempts").json()["total"] == 3
    finally:
        second.stop()
