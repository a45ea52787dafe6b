"""The in-container runner: execute a notebook, then run probes in the same kernel.

Protocol (stdin → stdout), chosen so nothing the student's code prints can pass for a result:
- The host writes one JSON job on stdin: ``{"notebook", "probes": [{"id", "code"}],
  "skip_sources", "cell_timeout", "probe_timeout", "key"}``. ``skip_sources`` holds the
  sha256 of the instructor's demonstration cells the grade does not need: a code cell whose
  source has one of them is not executed (an edited cell has another digest and runs).
  ``key`` is a random per-run secret that stays in this process; the kernel is started
  with stdin, stdout and stderr on /dev/null, so it never sees the key and cannot write to
  the channel.
- It prints signed frames ``GRADER-RESULT <hmac> <json>``, where ``hmac`` is
  HMAC-SHA256(key, json): one ``{"notebook": …}`` summary when the notebook has run, one
  ``{"probe": id, "result": {…}}`` per probe as soon as it is done, and a final summary with
  ``"complete": true``. The host accepts only frames whose HMAC verifies; if the container is
  killed during the probes, the answers already framed are still scored.
- Outputs of the student's cells are discarded as they arrive (only their size is counted);
  a probe value above ``MAX_PROBE_BYTES`` of JSON is reported as too large, not truncated.
- Each probe result is a dict that may carry more keys; ``status`` says what happened to the
  probe when it did not return a value: ``probe-timeout``, ``probe-crashed``,
  ``probe-output-too-large`` or ``memory`` (the kernel died and the memory cgroup says it
  killed it).

Expected values, checks and points never enter the container: a probe only *computes* (calls
the student's function on chosen inputs) and returns plain JSON; scoring happens on the host.
This module uses only nbformat/nbclient/jupyter_client, which the grading image has.
"""

from __future__ import annotations

import ast
import hashlib
import hmac
import json
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

MAX_PROBE_BYTES = 64 * 1024
MAX_CELL_OUTPUT_BYTES = 4 * 1024 * 1024  # total across cells; beyond it the run is flagged
MAX_ERROR_CHARS = 200  # of an exception's message kept in results (escaped on the host)
TOO_LARGE = "!too-large "  # no JSON text starts with "!", so this cannot be a student's value


# Run in the kernel before the notebook: printing more than the cap raises in the student's
# cell instead of growing ipykernel's stdout buffer until the memory limit kills the kernel.
OUTPUT_GUARD = f"""
import sys as __grader_sys

class OutputLimitExceeded(RuntimeError):
    pass

class __GraderCappedStream:
    def __init__(self, stream, budget):
        self._stream, self._budget = stream, budget

    def write(self, text):
        self._budget -= len(text)
        if self._budget < 0:
            raise OutputLimitExceeded("more than {MAX_CELL_OUTPUT_BYTES} characters printed")
        return self._stream.write(text)

    def __getattr__(self, name):
        return getattr(self._stream, name)

__grader_sys.stdout = __GraderCappedStream(__grader_sys.stdout, {MAX_CELL_OUTPUT_BYTES})
__grader_sys.stderr = __GraderCappedStream(__grader_sys.stderr, {MAX_CELL_OUTPUT_BYTES})
"""


def _probe_source(code: str, answers: tuple[str, ...] = (), forbidden: tuple[str, ...] = ()) -> str:
    """Wrap a probe (source defining ``probe()``) so its value comes back as a JSON string,
    or as the ``TOO_LARGE`` marker and the JSON's length when it exceeds ``MAX_PROBE_BYTES``.

    With forbidden references, the student's answers (globals named ``answers``) are watched
    while the probe calls them (course_pkg.checks._delegation, the self-checks' watch) and the
    value comes back as ``{"value": ..., "delegated": [names]}``."""
    if forbidden:
        value = f"__grader_run_probe(probe, globals(), {list(answers)!r}, {list(forbidden)!r})"
        watch = "from course_pkg.checks._delegation import run_probe as __grader_run_probe\n"
    else:
        value, watch = "probe()", ""
    return (
        f"{code}\n"
        "import json as __grader_json\n"
        f"{watch}"
        f"__grader_out = __grader_json.dumps({value}, default=repr)\n"
        f"__grader_out if len(__grader_out) <= {MAX_PROBE_BYTES} "
        f"else {TOO_LARGE!r} + str(len(__grader_out))"
    )


Emit = Callable[[dict[str, Any]], None]


def source_digest(source: str) -> str:
    """A cell's identity for ``skip_sources`` (runner.protocol imports this one for the host)."""
    return hashlib.sha256(source.encode("utf-8", "surrogatepass")).hexdigest()


def _execute(
    notebook_path: str,
    probes: list[dict[str, Any]],
    cell_timeout: int,
    work_dir: str,
    emit: Emit,
    probe_timeout: int | None = None,
    skip_sources: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    result: dict[str, Any] = {"notebook": "ok", "cells": 0, "cell_errors": [], "probes": {}}
    try:
        notebook = nbformat.read(notebook_path, as_version=4)
    except Exception as error:  # not JSON, not a notebook, wrong version…
        result["notebook"] = "invalid-notebook"  # the host checked it; no bytes of it quoted
        result["detail"] = f"the runner could not read the notebook ({type(error).__name__})"
        return result

    output_bytes = 0
    probing = False
    flags = {"flooded": False}

    class Client(NotebookClient):
        """Drops student cell output as it arrives (counting its size); keeps probe output."""

        def output(self, outs: Any, msg: Any, display_id: Any, cell_index: int) -> Any:
            nonlocal output_bytes
            if probing:
                return super().output(outs, msg, display_id, cell_index)
            output_bytes += len(json.dumps(msg.get("content", {}), default=str))
            if output_bytes > MAX_CELL_OUTPUT_BYTES and not flags["flooded"]:
                flags["flooded"] = True
                if self.km is not None:
                    self.km.interrupt_kernel()  # stop the flood now, not at the cell timeout
            if msg["msg_type"] == "error" and len(result["cell_errors"]) < 50:
                result["cell_errors"].append(
                    {"cell": cell_index, "ename": str(msg["content"].get("ename", "?"))[:100]}
                )
            return None

    client = Client(
        notebook,
        timeout=cell_timeout,
        kernel_name="python3",
        allow_errors=True,
        interrupt_on_timeout=True,  # a cell past its limit is interrupted; the rest still runs
        record_timing=False,
        resources={"metadata": {"path": work_dir}},
    )
    started = time.monotonic()
    quiet = {
        "stdin": subprocess.DEVNULL,
        "stdout": subprocess.DEVNULL,
        "stderr": subprocess.DEVNULL,
    }
    with client.setup_kernel(**quiet):
        try:
            guard = nbformat.v4.new_code_cell(OUTPUT_GUARD)
            client.nb.cells.append(guard)
            client.execute_cell(guard, len(client.nb.cells) - 1)
            client.nb.cells.pop()
            for index, cell in enumerate(notebook.cells):
                if cell.cell_type != "code":
                    continue
                if source_digest(cell.source) in skip_sources:
                    result["skipped_cells"] = result.get("skipped_cells", 0) + 1
                    continue
                client.execute_cell(cell, index)
                result["cells"] += 1
        except CellTimeoutError:
            result["notebook"] = "timeout"
        except DeadKernelError:
            result["notebook"] = "kernel-died"
            result["kernel_exit"] = _kernel_exit_code(client)
        result["notebook_seconds"] = round(time.monotonic() - started, 2)
        result["output_bytes"] = output_bytes
        interrupted = any(e["ename"] == "KeyboardInterrupt" for e in result["cell_errors"])
        capped = any(e["ename"] == "OutputLimitExceeded" for e in result["cell_errors"])
        result["oom_kills"] = _oom_kills()
        if flags["flooded"] or capped:
            result["notebook"] = "output-limit"  # even if the flood then cost the kernel's life
        elif interrupted and result["notebook"] == "ok":
            result["notebook"] = "timeout"  # a cell hit its time limit and was interrupted
        probing = True
        probe_timeout = probe_timeout or cell_timeout
        client.timeout = probe_timeout  # each probe gets its own limit
        emit({key: value for key, value in result.items() if key != "probes"})
        probes_started = time.monotonic()
        died: str | None = None
        for probe in probes:
            if died is not None:
                outcome = {
                    "status": "probe-crashed",
                    "error": f"not run: the kernel died during the probe of {died}",
                }
            else:
                outcome = _run_probe(
                    client,
                    probe["code"],
                    probe_timeout,
                    probe.get("answers", []),
                    probe.get("forbidden", []),
                )
                if outcome.pop("kernel_died", False):  # later probes cannot run
                    died = probe["id"]
                    result["probe_kernel_died"] = probe["id"]
                    result["oom_kills"] = _oom_kills()
            result["probes"][probe["id"]] = outcome
            emit({"probe": probe["id"], "result": outcome})
        result["probe_seconds"] = round(time.monotonic() - probes_started, 2)
    return result


def _oom_kills() -> int | None:
    """How many processes the container's memory cgroup has OOM-killed (v1 or v2)."""
    for path, key in (
        ("/sys/fs/cgroup/memory.events", "oom_kill"),
        ("/sys/fs/cgroup/memory/memory.oom_control", "oom_kill"),
    ):
        try:
            with open(path) as handle:
                lines = handle.read().splitlines()
            for line in lines:
                name, _, value = line.partition(" ")
                if name == key:
                    return int(value)
        except (OSError, ValueError):
            continue
    return None


def _kernel_exit_code(client: Any) -> int | None:
    """The dead kernel's exit code (-9 = SIGKILL, usually the memory limit)."""
    process = getattr(getattr(client.km, "provisioner", None), "process", None)
    return process.poll() if process is not None else None


def _run_probe(
    client: Any,
    code: str,
    timeout: int,
    answers: list[str] | tuple[str, ...] = (),
    forbidden: list[str] | tuple[str, ...] = (),
) -> dict[str, Any]:
    """Execute one probe as an extra cell in the same kernel: {"value": …} or a status
    (plus ``delegated``: the forbidden references the watched answers used)."""
    import nbformat
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    if client.km is None or not client.km.is_alive():
        return {
            "status": "probe-crashed",
            "error": "the kernel was not running",
            "kernel_died": True,
        }
    cell = nbformat.v4.new_code_cell(_probe_source(code, tuple(answers), tuple(forbidden)))
    client.nb.cells.append(cell)  # nbclient addresses cells by index in its notebook
    oom_before = _oom_kills() or 0
    started = time.monotonic()
    try:
        client.execute_cell(cell, len(client.nb.cells) - 1)
    except CellTimeoutError:
        return _timed_out(timeout)
    except DeadKernelError:
        died = {"kernel_died": True}
        if (_oom_kills() or 0) > oom_before:
            return {"status": "memory", "error": "the memory limit killed the kernel", **died}
        return {
            "status": "probe-crashed",
            "error": "the kernel died while running the probe",
            **died,
        }
    elapsed = time.monotonic() - started
    for output in cell.outputs:
        if output.output_type == "error":
            if output.ename == "KeyboardInterrupt" and elapsed >= timeout * 0.9:
                return _timed_out(timeout)  # nbclient interrupted it at the time limit
            ename, evalue = str(output.ename)[:100], str(output.evalue)[:MAX_ERROR_CHARS]
            return {"error": f"{ename}: {evalue}"}
    for output in cell.outputs:
        if output.output_type == "execute_result":
            text = str(output.get("data", {}).get("text/plain", ""))[: MAX_PROBE_BYTES * 2 + 64]
            try:
                value = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                value = None
            if isinstance(value, str) and value.startswith(TOO_LARGE):
                size = value[len(TOO_LARGE) :]
                return {
                    "status": "probe-output-too-large",
                    "error": f"the value was {size} characters of JSON, above the limit of "
                    f"{MAX_PROBE_BYTES}",
                }
            try:
                parsed = json.loads(value)
            except (TypeError, ValueError):
                return {"error": f"the probe's value was not JSON{_MANGLED}"}
            if not forbidden:
                return {"value": parsed}
            if not isinstance(parsed, dict) or "value" not in parsed:
                return {"error": f"the probe's value was not what it returned{_MANGLED}"}
            delegated = [str(name)[:200] for name in parsed.get("delegated") or []][:20]
            return {"value": parsed["value"], "delegated": delegated}
    return {"status": "probe-crashed", "error": "the probe produced no value"}


_MANGLED = " (does your notebook replace json, builtins or another library the check uses?)"


def _timed_out(timeout: int) -> dict[str, Any]:
    return {"status": "probe-timeout", "error": f"stopped at the {timeout} s time limit"}


def _make_undumpable() -> None:
    """PR_SET_DUMPABLE=0: processes of the same uid (the student's kernel) can then neither
    ptrace this process, read its memory (the HMAC key) nor open its /proc fds (our stdout)."""
    import contextlib
    import ctypes

    # Not Linux (a local preview elsewhere): nothing to protect, there is no sandbox anyway.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE = 4


def _framer(key: bytes) -> Emit:
    def emit(frame: dict[str, Any]) -> None:
        payload = json.dumps(frame, sort_keys=True)  # ensure_ascii: a lone surrogate is escaped
        signature = hmac.new(key, payload.encode(), hashlib.sha256).hexdigest()
        sys.stdout.write(f"\nGRADER-RESULT {signature} {payload}\n")
        sys.stdout.flush()

    return emit


def main() -> int:
    _make_undumpable()
    job = json.loads(sys.stdin.readline())
    emit = _framer(job.pop("key").encode())
    try:
        result = _execute(
            job["notebook"],
            job["probes"],
            int(job["cell_timeout"]),
            job.get("work_dir", "/work"),
            emit,
            job.get("probe_timeout"),
            frozenset(job.get("skip_sources") or ()),
        )
    except Exception:  # the runner itself failed: report it, framed
        import traceback

        result = {"notebook": "runner-error", "detail": traceback.format_exc()[-1500:]}
    result["complete"] = True
    emit({key: value for key, value in result.items() if key != "probes"})  # already framed
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
