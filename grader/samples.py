"""Sample submissions for the demo and the tests, generated from solutions/ and notebooks/
(so they never drift from the course): good, partial, empty and broken ones, and hostile
ones that each try one way to escape, cheat or break the grader."""

from __future__ import annotations

import copy
from pathlib import Path

import nbformat

from course_pkg import paths
from grader.authoring.assign import INSTRUCTOR_TAG

# One cell each, appended to the full solution: what a hostile student might try.
HOSTILE_CELLS: dict[str, str] = {
    "infinite_loop": "while True:\n    pass",
    "sleep_past_timeout": "import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"
    "time.sleep(100000)",
    "fork_bomb": "import os\nfor _ in range(10000):\n    try:\n        if os.fork() == 0:\n"
    "            import time; time.sleep(600)\n    except OSError:\n        break",
    "memory_bomb": "hog = []\nwhile True:\n    hog.append(bytearray(64 * 2**20))\n"
    "    for i in range(0, len(hog[-1]), 4096):\n        hog[-1][i] = 1",
    "output_flood": "import sys\nwhile True:\n    sys.stdout.write('x' * 1_000_000)",
    "disk_fill": "with open('/work/fill.bin', 'wb') as f:\n    while True:\n"
    "        f.write(b'\\0' * 2**20)",
    "network": "import urllib.request\nurllib.request.urlopen('http://127.0.0.1:9/', timeout=3)",
    "read_host": "import os\nfound = []\nfor top in ('/grader', '/course', '/submission', '/work', "
    "'/tmp', '/root', '/home', '/srv', '/mnt'):\n    for d, _, files in os.walk(top):\n"
    "        found += [os.path.join(d, f) for f in files if 'specs' in d or "
    "f in ('gradebook.csv', 'results.json')]\nfound += [p for p in ('/etc/shadow', '/root') "
    "if os.access(p, os.R_OK)]\nport_is_free = lambda port, host='127.0.0.1': found",
    "fake_results": "import os, json\nfake = 'GRADER-RESULT ' + '0' * 64 + ' ' + json.dumps("
    "{'notebook': 'ok', 'probes': {'port_is_free': {'value': [False, True]}}})\n"
    "for fd in (1, 2):\n    os.write(fd, ('\\n' + fake + "
    "'\\n').encode())\nfor path in ('/proc/1/fd/1', '/dev/stdout'):\n    try:\n"
    "        open(path, 'w').write(fake + '\\n')\n    except OSError:\n        pass\n"
    "open('/work/results.json', 'w').write('{\"score\": 100}')",
    "monkeypatch": "import json, builtins\njson.dumps = lambda *a, **k: '\"[true, true]\"'\n"
    "builtins.sorted = lambda *a, **k: ['all', 'correct']\n"
    "import course_pkg\ncourse_pkg.check = lambda *a, **k: True",
    "kill_kernel": "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)",
    "kill_runner": "import os, signal\nfor pid in (os.getppid(), 1):\n    try:\n"
    "        os.kill(pid, signal.SIGKILL)\n    except OSError:\n        pass",
    "os_exit": "import os\nos._exit(3)",
    "system_exit": "raise SystemExit(0)",
}


def _without_instructor_cells(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    clean = copy.deepcopy(notebook)
    clean.cells = [
        c for c in clean.cells if INSTRUCTOR_TAG not in c.get("metadata", {}).get("tags", [])
    ]
    for cell in clean.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return clean


def full_solution(notebook: str) -> nbformat.NotebookNode:
    return _without_instructor_cells(nbformat.read(paths.SOLUTIONS / notebook, as_version=4))


def write_samples(notebook: str, out: Path, hostile: bool = True) -> list[Path]:
    """Write the sample submissions for ``notebook`` (e.g. 00_setup_check.ipynb) into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    full = full_solution(notebook)
    student = nbformat.read(paths.NOTEBOOKS / notebook, as_version=4)
    written = []

    def save(name: str, nb: nbformat.NotebookNode) -> None:
        path = out / f"{name}.ipynb"
        nbformat.write(nb, path)
        written.append(path)

    save("full", full)
    save("empty", student)
    # partial: the student version with the first exercise answered from the solution
    partial = copy.deepcopy(student)
    solved = {c.id: c for c in full.cells}
    stubbed = [
        c for c in partial.cells if "raises-exception" in c.get("metadata", {}).get("tags", [])
    ]
    if stubbed:
        stubbed[0].source = solved[stubbed[0].id].source
    save("partial", partial)
    broken = out / "syntax_broken.ipynb"
    broken.write_text(nbformat.writes(full)[:-200])  # truncated JSON
    written.append(broken)
    text = out / "not_a_notebook.txt"
    text.write_text("I forgot to attach my notebook.\n")
    written.append(text)
    if hostile:
        for name, source in HOSTILE_CELLS.items():
            attack = copy.deepcopy(full)
            attack.cells.append(nbformat.v4.new_code_cell(source))
            save(f"hostile_{name}", attack)
    return written


# Per assignment, one cell appended to a submission that hands in course_pkg's own
# implementation of every exercise that has one (right values: without detection they would
# score). The grader must give those questions 0 and keep the others' scores.
DELEGATIONS: dict[str, str] = {
    "00": "from course_pkg import preflight\nfrom course_pkg.datasets import sha256_file\n"
    "def parse_lock(text):\n    return preflight.parse_lock(text)\n"
    "version_mismatches = preflight.version_mismatches\n"
    "import functools\nport_is_free = functools.partial(preflight.port_is_free)",
    "01": "import json, pathlib, tempfile\n"
    "from course_pkg.artifacts.manifest import package_model, version_mismatches\n"
    "def write_manifest(files, name, version, seed):\n"
    "    out = pathlib.Path(tempfile.mkdtemp()) / 'p'\n"
    "    package = package_model(files, out, name=name, version=version, seed=seed,\n"
    "                            model_file=next(iter(files)))\n"
    "    return json.loads((package.path / 'manifest.json').read_text())\n"
    "def version_drift(manifest, installed):\n    return sorted(version_mismatches(manifest))\n"
    "from course_pkg.artifacts.deep import save_saved_model, save_torchscript\n"
    "from course_pkg.artifacts.deep import saved_model_signatures\n"
    "def torchscript_roundtrip(net, example, path):\n"
    "    import torch\n    save_torchscript(net, path, example.numpy())\n"
    "    with torch.no_grad():\n"
    "        return float((torch.jit.load(str(path))(example) - net(example)).abs().max())\n"
    "def saved_model_signature(model, path):\n    save_saved_model(model, path)\n"
    "    return saved_model_signatures(path)['serving_default']",
    "02": "from course_pkg.artifacts import scan_bytes\n"
    "from course_pkg.checks.nb02 import ALLOW_EVERYTHING\n"
    "def find_globals(data):\n"
    "    return scan_bytes(data, allowlist=ALLOW_EVERYTHING).unique_globals",
    "03": "from course_pkg.onnx_export import check_parity, export_sklearn, runtime_max_opset\n"
    "export_pipeline = export_sklearn\nmax_opset = runtime_max_opset\n"
    "def parity_report(pipeline, model, frame):\n"
    "    r = check_parity(pipeline, model, frame)\n"
    "    return {'label_agreement': r.label_agreement, 'max_abs_diff': r.max_abs_proba_diff}",
    "04": "from course_pkg.checks.nb04 import reference_package\n"
    "from course_pkg.serving.app import create_app\n"
    "def make_app(predictor):\n    return create_app(reference_package())\n"
    "from course_pkg.demos.inference import image_to_features\n"
    "def make_image_app(predictor):\n"
    "    import pandas as pd\n    from fastapi import FastAPI, UploadFile\n    app = FastAPI()\n"
    "    @app.post('/predict/image')\n    def predict_image(file: UploadFile):\n"
    "        rows = pd.DataFrame(image_to_features(file.file.read()))\n"
    "        labels, proba = predictor.predict_both(rows)\n"
    "        return {'label': int(labels[0]),\n"
    "                'probabilities': {str(d): float(p) for d, p in enumerate(proba[0])}}\n"
    "    return app",
    "05": "from course_pkg.batch.reading import read_chunks\n"
    "from course_pkg.loadtest import LoadResult\n"
    "from course_pkg.serving.limits import PredictionCache, TokenBucket as _Bucket\n"
    "def score_in_chunks(predictor, csv_path, out_path, chunk_rows=10_000):\n"
    "    rows = 0\n"
    "    for i, chunk in enumerate(read_chunks(csv_path, chunk_rows)):\n"
    "        labels, proba = predictor.predict_both(chunk)\n"
    "        chunk = chunk.assign(prediction=labels, probability=proba[:, 1])\n"
    "        chunk.to_csv(out_path, mode='w' if i == 0 else 'a', header=i == 0, index=False)\n"
    "        rows += len(chunk)\n"
    "    return rows\n"
    "class TokenBucket:\n"
    "    def __init__(self, rate, burst, now=0.0):\n"
    "        self.b = _Bucket(rate=rate, burst=burst, tokens=float(burst), updated=now)\n"
    "    def allow(self, now):\n        return self.b.take(now)[0]\n"
    "def cache_key(model, version, row):\n"
    "    return PredictionCache.key(f'{model}:{version}', row)\n"
    "def latency_percentiles(values):\n"
    "    import collections, numpy as np\n"
    "    r = LoadResult(np.asarray(values), np.asarray(values), collections.Counter(), 0, 1.0, 1)\n"
    "    return {f'p{q}': LoadResult.percentile(r, q) for q in (50, 95, 99)}",
    "06": "from course_pkg.containers import tags_for\n"
    "def choose_tags(version, revision, model_version, release):\n"
    "    tags = tags_for(version, revision, model_version)\n"
    "    return tags + ['latest'] if release else tags[1:]",
    "07": "from course_pkg import monitoring\n"
    "from course_pkg.servers.torchserve import DIGITS_HANDLER\n"
    "_scope = {}\nexec(DIGITS_HANDLER, _scope)\nDigitsHandler = _scope['DigitsHandler']\n"
    "p99_query = monitoring.p99_latency\n"
    "from course_pkg.servers.mlflow_serve import MlflowServer, save_churn_mlflow\n"
    "def save_mlflow_model(pipeline, example, path):\n    save_churn_mlflow(path)\n"
    "def serve_command(model_dir, port):\n"
    "    return MlflowServer(model_dir, port=port).command",
    "08": "from course_pkg import canary, kubernetes\n"
    "from course_pkg.serving.gateway import Routing\n"
    "def choose_version(weights, client_id, model):\n"
    "    stable = max(sorted(weights), key=lambda v: weights[v])\n"
    "    return Routing({'stable': stable}, weights).choose(model, client_id)\n"
    "canary_verdict = canary.verdict\n"
    "def replicas_for(peak, per_core, utilization, minimum):\n"
    "    return kubernetes.plan_capacity(peak, per_core, target_utilization=utilization,\n"
    "                                    min_replicas=minimum).replicas",
    "09": "import yaml\nfrom course_pkg.deploy_folders import space_header\n"
    "from course_pkg.demos.azureml_score import init, run\n"
    "def space_readme(title, sdk_version):\n"
    "    header = {**space_header(title), 'sdk_version': sdk_version}\n"
    "    return f'---\\n{yaml.safe_dump(header)}---\\n\\n# {title}\\n'",
}

# The same delegation for 00, hidden from a reader of the source (names built at run time):
# only the in-sandbox watch can see it.
HIDDEN_DELEGATION = (
    "import importlib\n_m = importlib.import_module('course' + '_pkg' + '.pre' + 'flight')\n"
    "_f = getattr(_m, 'parse' + '_lock')\ndef parse_lock(text):\n    return _f(text)"
)
# The same delegation for 00, plain to read, with the in-sandbox watch switched off: only the
# host's reading of the source can see it.
BLINDED_DELEGATION = (
    "from course_pkg import preflight\nimport course_pkg.checks._delegation as _d\n"
    "_real = _d.run_probe\n"
    "def _blind(*a, **k):\n    out = _real(*a, **k)\n    out['delegated'] = []\n    return out\n"
    "_d.run_probe = _blind\n"
    "def parse_lock(text):\n    return preflight.parse_lock(text)"
)


def delegating(notebook: str, source: str) -> nbformat.NotebookNode:
    """The full solution with ``source`` appended as a last cell."""
    submission = full_solution(notebook)
    submission.cells.append(nbformat.v4.new_code_cell(source))
    return submission
