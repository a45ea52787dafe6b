"""Hidden grading spec for notebook 06 (Docker packaging).

Scored from the text the student's functions return. The notebook's self-checks also build and
run what the student wrote, on the student's own engine; the grader does not, because building
an untrusted Dockerfile on the instructor's engine would execute its RUN lines there, outside
the sandbox (docs/GRADING.md).
"""

from __future__ import annotations

from grader.specs.model import Assignment, Question, all_true

WRITE_PROBE = """
def probe():
    from course_pkg.checks.nb06 import digits_dockerfile_findings
    return digits_dockerfile_findings(write_dockerfile())
"""

FIX_PROBE = """
def probe():
    from course_pkg.checks.nb06 import dockerfile_findings
    return dockerfile_findings(fixed_dockerfile())
"""

TAGS_PROBE = """
def probe():
    from course_pkg.checks.nb06 import TAG_CASES, tag_findings
    results = {}
    for version, revision, model, release in TAG_CASES:
        for key, ok in tag_findings(choose_tags(version, revision, model, release),
                                    version, revision, model, release).items():
            results[f"{version}:{key}"] = ok
    return results
"""


def _tag_keys() -> list[str]:
    from course_pkg.checks.nb06 import TAG_CASES, tag_findings

    return [
        f"{v}:{key}" for v, r, m, release in TAG_CASES for key in tag_findings([], v, r, m, release)
    ]


ASSIGNMENT = Assignment(
    id="06",
    notebook="06_docker.ipynb",
    title="Docker packaging",
    questions=(
        Question(
            "write_dockerfile",
            3,
            "A Dockerfile for the digits model",
            WRITE_PROBE,
            lambda: [
                "builds_on_the_server_image",
                "copies_the_model",
                "serves_it",
                "stays_non_root",
            ],
            all_true,
            hint="FROM model-server:dev; COPY to /models/digits; exec-form CMD",
        ),
        Question(
            "fix_dockerfile",
            4,
            "Fix a broken Dockerfile",
            FIX_PROBE,
            lambda: [
                "non_root_user",
                "healthcheck",
                "dependencies_before_source",
                "exec_form_start",
                "no_pip_cache",
            ],
            all_true,
            hint="USER, HEALTHCHECK, requirements first, exec form, --no-cache-dir",
        ),
        Question(
            "choose_tags",
            3,
            "Choose tags",
            TAGS_PROBE,
            _tag_keys,
            all_true,
            hint="sha and model always; semver and latest only on release",
            answers=("choose_tags",),
        ),
    ),
    cell_timeout=180,
    wall_timeout=480,
)
