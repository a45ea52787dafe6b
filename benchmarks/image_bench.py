"""The model-server image vs a naive single-stage one: size, build time, start → ready.

    .venv/bin/python benchmarks/image_bench.py [--starts 5]

Builds both from the same wheels and model (`course_pkg.containers.prepare_context`), offline,
on the local base images; then starts each ``--starts`` times (``--network host``, server on
127.0.0.1, a free port) and reports the median seconds from ``docker run`` to a 200 from
/health/ready. Targets (issue #7): image ≤ 350 MB, start → ready ≤ 2 s. Figures go to
docs/DOCKER.md.
"""

from __future__ import annotations

import argparse
import statistics
import time

from course_pkg import containers
from course_pkg.serving.process import free_port


def start_to_ready(image: str, command: list[str] | None, starts: int) -> list[float]:
    timings = []
    for _ in range(starts):
        port = free_port()
        env = {"COURSE_SERVE_HOST": "127.0.0.1", "COURSE_SERVE_PORT": str(port)}
        started = time.perf_counter()
        container = containers.client().containers.run(
            image, command, detach=True, network_mode="host", environment=env
        )
        try:
            containers.wait_ready(f"http://127.0.0.1:{port}", 60, container)
            timings.append(time.perf_counter() - started)
        finally:
            container.stop(timeout=10)
            container.remove(force=True)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=5)
    args = parser.parse_args()
    containers.prepare_context()
    images = {
        "multi-stage (Dockerfile)": (
            containers.build_image("model-server:bench"),
            None,
        ),
        "naive single-stage": (
            containers.build_image(
                "model-server:naive",
                dockerfile="benchmarks/Dockerfile.naive",
            ),
            ["sh", "-c", "exec /opt/venv/bin/python -m course_pkg serve build/model"],
        ),
    }
    print(f"{'image':<26}{'size MB':>9}{'build s':>9}{'ready s (median)':>18}{'min':>7}{'max':>7}")
    sizes = {}
    for name, (built, command) in images.items():
        timings = start_to_ready(built.image_id, command, args.starts)
        sizes[name] = built.size_bytes
        print(
            f"{name:<26}{built.size_bytes / 1e6:>9.0f}{built.seconds:>9.0f}"
            f"{statistics.median(timings):>18.2f}{min(timings):>7.2f}{max(timings):>7.2f}"
        )
    ratio = sizes["naive single-stage"] / sizes["multi-stage (Dockerfile)"]
    print(f"\nthe naive image is {ratio:.1f}× the size")
    print("\nlayers of the multi-stage image:")
    for command, size in containers.layer_sizes("model-server:bench"):
        if size:
            print(f"  {size / 1e6:>8.1f} MB  {command}")


if __name__ == "__main__":
    main()
