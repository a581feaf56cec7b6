"""One exception hierarchy. Every message says what went wrong and what to do about it."""


class InterviewerError(Exception):
    """Base class for every error interviewer raises on purpose."""


class DocumentError(InterviewerError):
    """A question document is missing or malformed (the message names file and line)."""


class UnknownQuestion(InterviewerError):
    """A question id that the document does not have."""


class RubricError(InterviewerError):
    """A rubric file is malformed or no longer matches its document."""


class ModelUnavailable(InterviewerError):
    """A model file or package is missing, corrupt, or cannot be loaded."""


class InputError(InterviewerError):
    """Input from a user (a batch row, a request) that cannot be used as given."""
