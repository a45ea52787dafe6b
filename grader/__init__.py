"""grader: turn solution notebooks into student notebooks, and grade submissions.

``grader assign`` is the authoring half (solutions/ → notebooks/). Grading submissions in
locked-down containers is the other half (see docs/ARCHITECTURE.md).
"""

from grader.authoring.assign import AuthoringError, make_student_notebook

__all__ = ["AuthoringError", "make_student_notebook"]
