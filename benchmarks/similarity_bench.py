"""How long ``grader similarity`` takes on 300 generated submissions of notebook 00.

Each submission is the student notebook with every answer cell filled in one of several
ways: the reference solution with its names changed, an independent implementation, or (for
a few) a copy of another submission's cell; plus noise lines. Nothing is executed.

    .venv/bin/python benchmarks/similarity_bench.py [--submissions 300]
"""

from __future__ import annotations

import argparse
import random
import re
import tempfile
import time
from pathlib import Path

import nbformat

from course_pkg import paths
from grader.similarity import answer_cells, compare

NOTEBOOK = "00_setup_check.ipynb"
OTHER_WAYS = {  # an independent answer per exercise function, written differently
    "sha256_file": "def sha256_file(path):\n    import hashlib\n    return hashlib.sha256("
    "open(path, 'rb').read()).hexdigest()\n",
    "parse_lock": "def parse_lock(text):\n    out = {}\n    for raw in text.split('\\n'):\n"
    "        raw = raw.split(';')[0].split('\\\\')[0].strip()\n        if '==' not in raw or "
    "raw.startswith(('#', '-')):\n            continue\n"
    "        name, version = raw.split('==', 1)\n"
    "        name = name.split('[')[0]\n        out[re.sub('[-_.]+', '-', name).lower()] = "
    "version.strip()\n    return out\n",
    "version_mismatches": "def version_mismatches(locked, installed):\n    result = []\n"
    "    for name in sorted(locked):\n        if installed.get(name) != locked[name]:\n"
    "            result.append((name, locked[name], installed.get(name)))\n    return result\n",
    "port_is_free": "def port_is_free(port, host='127.0.0.1'):\n    s = socket.socket()\n"
    "    try:\n        s.bind((host, port))\n        return True\n    except OSError:\n"
    "        return False\n    finally:\n        s.close()\n",
}


def _renamed(source: str, rng: random.Random) -> str:
    for name in ("digest", "handle", "block", "pins", "match", "name", "sock", "version"):
        source = re.sub(rf"\b{name}\b", f"{name}_{rng.randrange(1000)}", source)
    return source


def generate(folder: Path, count: int, seed: int = 0) -> dict[str, Path]:
    rng = random.Random(seed)
    references, _ = answer_cells(NOTEBOOK)
    student = nbformat.read(paths.NOTEBOOKS / NOTEBOOK, as_version=4)
    made: dict[str, Path] = {}
    for i in range(count):
        notebook = nbformat.from_dict(student)
        for cell in notebook.cells:
            if cell.get("id") not in references:
                continue
            function = re.search(r"^def (\w+)", references[cell.id], re.M)
            way = rng.random()
            if way < 0.3:
                cell.source = _renamed(references[cell.id], rng)
            elif function and function.group(1) in OTHER_WAYS:
                cell.source = OTHER_WAYS[function.group(1)] + f"# note {rng.random()}\n"
            cell.source += "\n" + "\n".join(f"x{j} = {rng.randrange(99)}" for j in range(3))
        path = folder / f"student{i:03d}.ipynb"
        nbformat.write(notebook, path)
        made[path.stem] = path
    return made


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--submissions", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        submissions = generate(Path(tmp), args.submissions)
        started = time.perf_counter()
        matches, _ = compare(submissions, NOTEBOOK)
        seconds = time.perf_counter() - started
    print(f"{args.submissions} submissions: {seconds:.1f} s, {len(matches)} pairs flagged")


if __name__ == "__main__":
    main()
