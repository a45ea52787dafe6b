"""Hidden grading spec for notebook 00 (setup check). Inputs differ from the self-checks."""

from __future__ import annotations

import hashlib
from typing import Any

from course_pkg import preflight
from grader.specs.model import Assignment, Outcome, Question, fraction_equal

_CONTENTS = [b"", b"grading\n" * 3, bytes(range(256)) * 9000, b"\x00" * 1_048_577]

SHA_PROBE = """
def probe():
    import tempfile, pathlib
    contents = [b"", b"grading\\n" * 3, bytes(range(256)) * 9000, b"\\x00" * 1_048_577]
    folder = pathlib.Path(tempfile.mkdtemp())
    digests = []
    for i, data in enumerate(contents):
        path = folder / f"f{i}.bin"
        path.write_bytes(data)
        digests.append(sha256_file(path))
    return digests
"""

LOCK_TEXT = """\
--index-url https://example.invalid/simple
Django==5.2.1 \\\\
    --hash=sha256:1111
    # via -r requirements.in
zope.interface==7.2 ; sys_platform == "linux"
Pillow[heif]==11.3.0
torchvision==0.29.1+cpu
# commented==1.0
"""
LOCK_PROBE = f'''
def probe():
    return parse_lock("""{LOCK_TEXT}""")
'''

MISMATCH_ARGS = (
    {"a": "1.0", "b": "2.0", "c": "3.0+cpu", "d": "4"},
    {"a": "1.0", "b": "2.1", "c": "3.0", "e": "9"},
)
MISMATCH_PROBE = f"""
def probe():
    return [list(item) for item in version_mismatches({MISMATCH_ARGS[0]!r}, {MISMATCH_ARGS[1]!r})]
"""

PORT_PROBE = """
def probe():
    import socket
    results = []
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        results.append(port_is_free(port))
    results.append(port_is_free(port))
    return results
"""


def _pins_outcome(got: Any, expected: dict[str, str]) -> Outcome:
    if not isinstance(got, dict):
        return Outcome(0.0, "parse_lock must return a dict")
    right = sum(got.get(k) == v for k, v in expected.items())
    extra = len(set(got) - set(expected))
    score = max(0.0, (right - extra) / len(expected))
    return Outcome(score, f"{right} of {len(expected)} pins right, {extra} non-pins reported")


ASSIGNMENT = Assignment(
    id="00",
    notebook="00_setup_check.ipynb",
    title="Setup check",
    questions=(
        Question(
            "sha256_file",
            2,
            "SHA-256 of a file",
            SHA_PROBE,
            expected=lambda: [hashlib.sha256(c).hexdigest() for c in _CONTENTS],
            compare=fraction_equal,
            hint="hex digest of the raw bytes, read in 'rb' mode",
            answers=("sha256_file",),
        ),
        Question(
            "parse_lock",
            2,
            "Parse a lock file",
            LOCK_PROBE,
            expected=lambda: preflight.parse_lock(LOCK_TEXT.replace("\\\\", "\\")),
            compare=_pins_outcome,
            hint="normalise names; keep +local versions; skip options",
            answers=("parse_lock",),
        ),
        Question(
            "version_mismatches",
            2,
            "Compare installed versions with the lock",
            MISMATCH_PROBE,
            expected=lambda: [list(t) for t in preflight.version_mismatches(*MISMATCH_ARGS)],
            hint="sorted tuples (name, locked, installed or None), locked packages only",
            answers=("version_mismatches",),
        ),
        Question(
            "port_is_free",
            1,
            "Is a port free?",
            PORT_PROBE,
            expected=lambda: [False, True],
            compare=fraction_equal,
            answers=("port_is_free",),
        ),
    ),
)
