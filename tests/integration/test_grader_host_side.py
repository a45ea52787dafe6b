"""The grader's host side against hostile submissions, through the real CLI and containers.

What a student controls — the file name, what the entry is (a link, a directory), what their
functions do when probed, what their exceptions say — must stay data: every entry gets a
row, nothing is followed out of the folder, nothing renders as a formula, HTML or an extra
row, each probe failure has its own status, and Ctrl-C leaves no container behind. The
hostile corpus is made here, in tmp_path (bytes paths for names that are not UTF-8).
Assignment 00, with short limits, keeps each batch to a minute or two.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import nbformat
import pytest

from course_pkg import paths
from grader.runner.containers import HOST_LABEL, LABEL, PID_LABEL, STARTED_LABEL
from grader.samples import HOSTILE_CELLS, full_solution

pytestmark = [pytest.mark.docker, pytest.mark.integration, pytest.mark.slow]

NOTEBOOK = "00_setup_check.ipynb"


def _cli(
    folder: Path, out: Path, timeout: int = 60, cell_timeout: int = 120, probe_timeout: int = 60
) -> list[str]:
    return [
        sys.executable,
        "-m",
        "grader.cli",
        "grade",
        str(folder),
        "--assignment",
        "00",
        "--out",
        str(out),
        "--jobs",
        "2",
        "--cell-timeout",
        str(cell_timeout),
        "--probe-timeout",
        str(probe_timeout),
        "--timeout",
        str(timeout),
    ]


def _env(run_id: str) -> dict[str, str]:
    return {**os.environ, "COURSE_GRADER_RUN_ID": run_id}


def _run(
    folder: Path, out: Path, timeout: int = 150, probe_timeout: int = 60
) -> tuple[subprocess.CompletedProcess[str], str]:
    run_id = f"test-{uuid.uuid4().hex[:10]}"
    done = subprocess.run(
        _cli(folder, out, timeout, probe_timeout=probe_timeout),
        env=_env(run_id),
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    return done, run_id


def _containers(run_id: str) -> list[str]:
    listing = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label={LABEL}={run_id}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return listing.stdout.split()


def _rows(out: Path) -> dict[str, dict[str, str]]:
    text = (out / "gradebook.csv").read_text(encoding="utf-8")
    return {row["submission"]: row for row in csv.DictReader(text.splitlines())}


def _write(folder: Path, raw: bytes, data: bytes) -> None:
    with open(os.path.join(os.fsencode(folder), raw), "wb") as handle:
        handle.write(data)


def _with_cell(source: str) -> bytes:
    notebook = full_solution(NOTEBOOK)
    notebook.cells.append(nbformat.v4.new_code_cell(source))
    return nbformat.writes(notebook).encode()


def test_names_links_and_odd_entries_each_get_a_row_and_stay_data(
    grading_image: str, tmp_path: Path
) -> None:
    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    full = nbformat.writes(full_solution(NOTEBOOK)).encode()
    for raw in (b"=HYPERLINK(1).ipynb", b"a:b.ipynb", b"bad\xff.ipynb"):
        _write(folder, raw, full)
    _write(folder, b"Bob.ipynb", full)
    _write(folder, b"bob.ipynb", b"[]")
    _write(folder, b"new\nline \x1b[31m<b>.ipynb", b"{not json")
    _write(folder, b"gradebook.csv", b"a,b\n")
    _write(folder, b".DS_Store", b"\x00\x01")
    (folder / "folder.ipynb").mkdir()
    os.symlink("/etc/passwd", folder / "passwd.ipynb")
    os.symlink("/proc/self/environ", folder / "environ.ipynb")
    os.symlink(folder / "Bob.ipynb", folder / "copy.ipynb")
    os.symlink(paths.SOLUTIONS / NOTEBOOK, folder / "solution.ipynb")
    os.symlink("/nonexistent", folder / "dangling.ipynb")
    before = sorted(os.listdir(os.fsencode(folder)))

    done, run_id = _run(folder, out)

    assert done.returncode == 0, done.stderr
    assert sorted(os.listdir(os.fsencode(folder))) == before  # docker created nothing there
    rows = _rows(out)
    assert len(rows) == len(before)  # every entry has a row, none overwrote another
    by_name = {row["name"]: row for row in rows.values()}
    for name in ("'=HYPERLINK(1).ipynb", "a:b.ipynb", "bad\\xff.ipynb"):
        assert (by_name[name]["status"], by_name[name]["total"]) == ("ok", "7"), by_name[name]
    bobs = [row for name, row in by_name.items() if name.lower() == "bob.ipynb"]
    assert len({r["submission"] for r in bobs}) == 2  # both graded, under distinct ids
    assert all("duplicate id" in r["note"] for r in bobs)
    # graded normally, the status flags the collision; a worse status (invalid) is kept
    assert sorted((r["status"], r["total"]) for r in bobs) == [
        ("duplicate-id", "7"),
        ("invalid-notebook", "0"),
    ]
    for name in ("passwd.ipynb", "environ.ipynb", "copy.ipynb", "solution.ipynb", "dangling.ipynb"):
        assert (by_name[name]["status"], by_name[name]["total"]) == ("symlink-refused", "0")
    assert by_name["folder.ipynb"]["status"] == "not-a-file"
    assert by_name["gradebook.csv"]["status"] == "reserved-name"
    # what grader similarity RESULTS/ reads back (the folder, resolved: never a student name)
    run = json.loads((out / "grading-run.json").read_text())
    assert run == {"assignment": "00", "submissions": str(folder.resolve())}
    assert by_name[".DS_Store"]["status"] == "invalid-notebook"
    for row in rows.values():  # no cell a spreadsheet would evaluate
        assert not any(cell.startswith(("=", "+", "-", "@")) for cell in row.values()), row
    everything = b"".join(p.read_bytes() for p in out.rglob("*") if p.is_file())
    assert b"root:x:0:0" not in everything and b"PATH=" not in everything  # no host bytes
    odd = next(r for n, r in by_name.items() if n.startswith("new"))
    feedback = (out / odd["submission"] / "feedback.md").read_text(encoding="utf-8")
    title = feedback.splitlines()[0]
    assert title.startswith("# 00 · Setup check — feedback for new") and "line" in title
    assert "\x1b" not in feedback and "<b>" not in feedback and "&lt;b&gt;" in title
    assert "\x1b" not in done.stdout  # the terminal gets no escape sequences either
    assert _containers(run_id) == []


PROBE_ATTACKS = {
    # parse_lock hangs (interruptible), version_mismatches returns 200 KB, port_is_free raises
    # an exception whose class name and message try to forge feedback rows and HTML.
    "statuses": (
        "def parse_lock(text):\n    import time\n    time.sleep(10**6)\n"
        "def version_mismatches(a, b):\n    return ['x' * 200_000]\n"
        "Forged = type('Fake | 2 / 2 | correct |\\n| ✅ bonus', (Exception,), {})\n"
        "def port_is_free(port, host='127.0.0.1'):\n"
        "    raise Forged('</details><script>x()</script>\\n**Score: 7 / 7**')\n"
    ),
    # the kernel dies while parse_lock is probed; later questions were not run
    "kernel_dies": "def parse_lock(text):\n    import os, signal\n"
    "    os.kill(os.getpid(), signal.SIGKILL)\n",
    # port_is_free (the last probe) fills memory until the cgroup kills the kernel
    "memory": "def port_is_free(port, host='127.0.0.1'):\n    hog = []\n    while True:\n"
    "        hog.append(bytearray(64 * 2**20))\n"
    "        for i in range(0, len(hog[-1]), 4096):\n            hog[-1][i] = 1\n",
    # port_is_free (the last probe) ignores SIGINT and sleeps: the wall clock stops it
    "wall_clock": "def port_is_free(port, host='127.0.0.1'):\n    import signal, time\n"
    "    signal.signal(signal.SIGINT, signal.SIG_IGN)\n    time.sleep(10**6)\n",
}


def test_each_probe_failure_has_its_status_and_earlier_answers_count(
    grading_image: str, tmp_path: Path
) -> None:
    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    for name, source in PROBE_ATTACKS.items():
        _write(folder, f"{name}.ipynb".encode(), _with_cell(source))
    surrogate = nbformat.writes(full_solution(NOTEBOOK)).replace("import", "'\\ud800'; import", 1)
    _write(folder, b"surrogate.ipynb", surrogate.encode())

    done, run_id = _run(folder, out, timeout=150, probe_timeout=10)

    assert done.returncode == 0, done.stderr
    rows = _rows(out)

    def questions(ident: str) -> dict[str, dict[str, object]]:
        record = json.loads((out / ident / "results.json").read_text())["extra_data"]["course"]
        return {q["id"]: q for q in record["questions"]}

    statuses = questions("statuses")
    assert rows["statuses"]["status"] == "ok" and rows["statuses"]["sha256_file"] == "2"
    assert statuses["parse_lock"]["status"] == "probe-timeout"
    assert "KeyboardInterrupt" not in str(statuses["parse_lock"]["feedback"])
    assert statuses["version_mismatches"]["status"] == "probe-output-too-large"
    assert statuses["port_is_free"]["status"] == "error"
    feedback = (out / "statuses" / "feedback.md").read_text(encoding="utf-8")
    table = [line for line in feedback.splitlines() if line.startswith("|")]
    assert len(table) == 2 + 4  # header, rule, one row per question: no forged row
    assert "<script>" not in feedback and "</details>" not in feedback
    assert "**Score" not in feedback.split("\n", 3)[3]  # the only score line is the real one
    assert "each question's check 10 s" in feedback

    died = questions("kernel_dies")
    assert rows["kernel_dies"]["status"] == "crashed" and rows["kernel_dies"]["sha256_file"] == "2"
    assert died["parse_lock"]["status"] == "probe-crashed"
    assert died["port_is_free"]["status"] == "probe-crashed"
    assert "not run" in str(died["port_is_free"]["feedback"])

    assert rows["memory"]["status"] == "memory", rows["memory"]
    assert questions("memory")["port_is_free"]["status"] == "memory"
    assert rows["memory"]["total"] == "6"  # the three answers before the kill still count

    assert rows["wall_clock"]["status"] == "timeout"
    assert rows["wall_clock"]["total"] == "6"  # framed before the container was killed
    assert questions("wall_clock")["port_is_free"]["status"] == "probe-timeout"

    assert rows["surrogate"]["status"] == "invalid-notebook"
    assert (
        "lone surrogate"
        in json.loads((out / "surrogate" / "results.json").read_text())["extra_data"]["course"][
            "detail"
        ]
    )
    assert _containers(run_id) == []


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_stopped_run_removes_its_containers_and_keeps_what_finished(
    signum: int, grading_image: str, tmp_path: Path
) -> None:
    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    _write(folder, b"sleeper.ipynb", _with_cell(HOSTILE_CELLS["sleep_past_timeout"]))
    _write(folder, b"broken.ipynb", b"{not json")
    run_id = f"test-{uuid.uuid4().hex[:10]}"
    grader = subprocess.Popen(
        _cli(folder, out, timeout=600),
        env=_env(run_id),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )
    try:
        deadline = time.monotonic() + 120
        while not _containers(run_id) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert _containers(run_id), "the grader never started a container"
        time.sleep(2)
        os.killpg(grader.pid, signum)  # what Ctrl-C (or a service manager) does
        _, stderr = grader.communicate(timeout=120)
    finally:
        if grader.poll() is None:
            grader.kill()
    assert grader.returncode == 128 + signum, stderr
    assert _containers(run_id) == []
    assert "not graded (rerun to resume): sleeper" in stderr
    rows = _rows(out)
    assert rows["broken"]["status"] == "invalid-notebook" and "sleeper" not in rows
    assert not (out / "sleeper").exists()  # nothing recorded for what did not finish


def test_a_new_run_reaps_containers_of_a_dead_run_and_says_so(
    grading_image: str, tmp_path: Path
) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    leftover = f"test-{uuid.uuid4().hex[:10]}"
    created = subprocess.run(
        [
            "docker",
            "create",
            "--label",
            f"{LABEL}={leftover}",
            "--label",
            f"{HOST_LABEL}={socket.gethostname()}",
            "--label",
            f"{PID_LABEL}={gone.pid}",
            "--label",
            f"{STARTED_LABEL}=0",
            "--network",
            "none",
            grading_image,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    try:
        folder = tmp_path / "in"
        folder.mkdir()
        done, _ = _run(folder, tmp_path / "out")
        assert done.returncode == 0, done.stderr
        assert "left by an earlier grader run" in done.stdout
        assert _containers(leftover) == []
    finally:
        subprocess.run(["docker", "rm", "-f", created.stdout.strip()], capture_output=True)
