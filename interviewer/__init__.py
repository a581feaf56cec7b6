"""interviewer: a local-first mock interviewer that grades answers against cited rubrics."""

__version__ = "0.1.0"

__all__ = ["__version__", "Engine", "GradeResult"]


def __getattr__(name):  # keep `import interviewer` light: nothing heavy until asked for
    if name == "Engine":
        from .service import Engine

        return Engine
    if name == "GradeResult":
        from .schema import GradeResult

        return GradeResult
    raise AttributeError(name)
