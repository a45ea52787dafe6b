"""Per-request cost of the server's application code, this tree vs another revision.

    .venv/bin/python benchmarks/app_overhead_bench.py                 # this tree only
    .venv/bin/python benchmarks/app_overhead_bench.py --compare 031aa09

Calls the ASGI app directly (no sockets, no uvicorn, no client): a one-row churn request to
``/invocations`` and to the native route, 10,000 times, best of five, access log off. With
the network and the client gone, a few microseconds of change on the hot path are visible,
which wrk's run-to-run noise (±5 % here) hides. ``--compare REV`` checks REV out into a
temporary git worktree and runs the same measurement there (same venv, PYTHONPATH first),
then prints both and the ratio. Each measurement runs in its own process, one at a time.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROUTES = ("/invocations", "/v1/models/churn/predict")


def measure(package: str, route: str, calls: int = 10_000) -> float:
    """Best-of-five microseconds per request through the whole app (in this process)."""
    import asyncio
    import time

    from course_pkg.checks.nb04 import GOOD
    from course_pkg.serving import ServerSettings, create_app

    app = create_app([package], ServerSettings(background_load=False, access_log=False))
    if route == "/invocations":
        payload = {"dataframe_split": {"columns": list(GOOD), "data": [list(GOOD.values())]}}
    else:
        payload = {"records": [GOOD]}
    body = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]

    async def call() -> int:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": route,
            "raw_path": route.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 40000),
            "server": ("127.0.0.1", 8000),
        }
        messages = [{"type": "http.request", "body": body, "more_body": False}]
        statuses: list[int] = []

        async def receive() -> dict[str, object]:
            return messages.pop() if messages else {"type": "http.disconnect"}

        async def send(message: dict[str, object]) -> None:
            if message["type"] == "http.response.start":
                statuses.append(int(message["status"]))  # type: ignore[call-overload]

        await app(scope, receive, send)
        return statuses[0]

    async def run() -> float:
        async with app.router.lifespan_context(app):
            for _ in range(2_000):  # warm up
                if await call() != 200:
                    raise RuntimeError(f"{route} did not answer 200")
            best = float("inf")
            for _ in range(5):
                started = time.perf_counter()
                for _ in range(calls):
                    await call()
                best = min(best, (time.perf_counter() - started) / calls * 1e6)
            return best

    return asyncio.run(run())


def run_in(tree: Path, package: str) -> dict[str, float]:
    """This script's measurement in a fresh process importing course_pkg from ``tree``."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    code = (
        "import json, sys; sys.path.insert(0, sys.argv[1]); "
        "from app_overhead_bench import measure, ROUTES; "
        "print(json.dumps({r: measure(sys.argv[2], r) for r in ROUTES}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(HERE), package],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=tree,
    )
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--compare", help="a git revision to measure side by side")
    args = parser.parse_args()
    root = HERE.parent
    with tempfile.TemporaryDirectory(prefix="overhead-") as work:
        from course_pkg.training import package_churn

        package = str(package_churn(Path(work) / "churn").path)
        results = {"this tree": run_in(root, package)}
        if args.compare:
            tree = Path(work) / "other"
            subprocess.run(
                [
                    "git",
                    "-C",
                    str(root),
                    "worktree",
                    "add",
                    "-q",
                    "--detach",
                    str(tree),
                    args.compare,
                ],
                check=True,
            )
            try:
                results[args.compare] = run_in(tree, package)
            finally:
                subprocess.run(
                    ["git", "-C", str(root), "worktree", "remove", "--force", str(tree)], check=True
                )
    print(f"{'route':<28}" + "".join(f"{name:>14}" for name in results) + "   (µs/request)")
    for route in ROUTES:
        print(f"{route:<28}" + "".join(f"{r[route]:>14.1f}" for r in results.values()))
    if args.compare:
        mine, theirs = results["this tree"], results[args.compare]
        for route in ROUTES:
            print(f"{route}: this tree / {args.compare} = {mine[route] / theirs[route]:.3f}×")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
