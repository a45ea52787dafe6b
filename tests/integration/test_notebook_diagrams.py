"""Every notebook's Mermaid diagram, rendered by a real JupyterLab 4 in headless Chromium.

A typo in a ```` ```mermaid ```` block shows the student a red "Syntax error" box instead of
the diagram of what the notebook builds, and nothing else would notice. So this starts
JupyterLab from the course venv on 127.0.0.1 (token auth, no update checks, news or
extension manager), loads the lab page once and opens each solutions/ and notebooks/
notebook through JupyterLab's own ``docmanager:open`` command, the one the file browser runs,
with the kernel preference "do not start one": the notebook is rendered, never executed, and
afterwards the server must list no kernel and no session. For each Mermaid cell it reads
what @jupyterlab/mermaid put in the page: ``div.jp-RenderedMermaid > figure > img`` (the SVG
as a data URI) when the diagram rendered, ``div.jp-RenderedMermaid.jp-mod-warning >
details`` (the source and Mermaid's parse error) when it did not. A rendered diagram must be
a loaded image with at least ``MIN_NODES`` nodes, and a flowchart exactly the nodes its
source names. A notebook with broken diagrams, written for the run under build/, shows the
same check failing every time. Each diagram cell's screenshot goes to build/screenshots/.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import nbformat
import pytest

from course_pkg.browser import wait_until
from course_pkg.paths import BUILD, NOTEBOOKS, ROOT, SOLUTIONS
from course_pkg.processes import LocalServer, free_port

MIN_NODES = 4  # every course diagram has more; one or two nodes means a diagram lost its body
# Mermaid draws 16 px text and the cell scales a wide diagram down to its width: below ~11 px
# (in a 1280 px window) the labels are no longer read at a glance
MIN_TEXT_PX = 11
FENCE = re.compile(r"^```mermaid[ \t]*\n(.*?)^```", re.DOTALL | re.MULTILINE)
NOTEBOOK_PATHS = sorted(SOLUTIONS.glob("[0-9][0-9]_*.ipynb")) + sorted(
    NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")
)
COURSE = (SOLUTIONS.name, NOTEBOOKS.name)
SHOTS = BUILD / "screenshots" / "diagrams"

# cell id → a diagram the check must reject (an unclosed bracket; a diagram without its body)
BROKEN = {
    "syntax-error": 'flowchart LR\n  model["model.onnx"] --> api["server"\n  api --> up{"up?"}\n',
    "one-node": 'flowchart LR\n  alone["a diagram that lost its edges"]\n',
}


@dataclass(frozen=True)
class Diagram:
    """One ```` ```mermaid ```` block: where it is and what it says."""

    notebook: str  # path relative to the served root, as JupyterLab names it
    cell_id: str
    text: str


def diagrams_in(path: Path) -> list[Diagram]:
    notebook = nbformat.read(path, as_version=4)
    relative = path.relative_to(ROOT).as_posix()
    return [
        Diagram(relative, cell.id, text)
        for cell in notebook.cells
        if cell.cell_type == "markdown"
        for text in FENCE.findall(cell.source)
    ]


_SKIPPED_STATEMENTS = ("subgraph", "end", "%%", "classDef", "class ", "style ", "linkStyle",
                       "direction", "click ")  # fmt: skip
_EDGE = re.compile(r"<?[-=.~]{2,}>?|&")


def flowchart_nodes(text: str) -> set[str] | None:
    """The node ids a flowchart names (declared or only used in an edge); None when the
    diagram is not a flowchart, whose nodes this does not know how to read."""
    lines = text.strip().splitlines()
    if not lines or not re.match(r"(flowchart|graph)\b", lines[0].strip()):
        return None
    ids: set[str] = set()
    for line in lines[1:]:
        line = re.sub(r'"[^"]*"', "", line).strip()  # labels may hold anything
        if not line or line.startswith(_SKIPPED_STATEMENTS):
            continue
        line = re.sub(r"\|[^|]*\|", "", line)  # edge labels -->|x|
        for pattern in (r"\([^()]*\)", r"\[[^\[\]]*\]", r"\{[^{}]*\}"):  # node shapes
            line = re.sub(pattern, "", line)
        for piece in _EDGE.split(line):
            match = re.match(r"\s*([A-Za-z_]\w*)", piece)
            if match:
                ids.add(match.group(1))
    return ids


def diagram_problems(rendered: dict[str, Any], diagram: Diagram) -> list[str]:
    """What is wrong with one rendered diagram, as a reader would say it; [] when nothing."""
    if rendered["state"] == "error":
        return [f"JupyterLab shows Mermaid's error instead of a diagram: {rendered['message']}"]
    problems = []
    if rendered["role"] == "error" or rendered["parse_error"]:
        problems.append(f"the SVG is an error picture (role {rendered['role']!r})")
    if rendered["width"] <= 0 or rendered["height"] <= 0 or not rendered["loaded"]:
        problems.append(f"the image did not load ({rendered['width']}x{rendered['height']} px)")
    if rendered["nodes"] < MIN_NODES:
        problems.append(f"only {rendered['nodes']} node(s) drawn (fewer than {MIN_NODES})")
    if rendered["drawn_width"] and 16 * rendered["width"] / rendered["drawn_width"] < MIN_TEXT_PX:
        text_px = 16 * rendered["width"] / rendered["drawn_width"]
        problems.append(
            f"scaled to the cell its text is ~{text_px:.0f} px (under {MIN_TEXT_PX}): "
            "lay it out top to bottom or shorten its labels"
        )
    named = flowchart_nodes(diagram.text)
    if named is not None and rendered["nodes"] != len(named):
        problems.append(f"{rendered['nodes']} nodes drawn, the source names {len(named)}")
    return problems


class JupyterLab(LocalServer):
    """JupyterLab 4 from this venv on 127.0.0.1, serving ``root``; its settings, workspaces,
    config and runtime files in ``home`` (nothing of the user's is read or written). No
    update check, news feed or extension manager: the page makes no call off this machine."""

    what = "jupyterlab"

    def __init__(self, root: Path, home: Path) -> None:
        port, self.token = free_port(), secrets.token_hex(16)
        command = [
            *(sys.executable, "-m", "jupyterlab", "--no-browser"),
            *("--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0"),
            f"--ServerApp.root_dir={root}",
            f"--IdentityProvider.token={self.token}",
            "--LabApp.expose_app_in_browser=True",  # window.jupyterapp: open notebooks by command
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.news_url=None",
            "--LabApp.extension_manager=readonly",
            "--ServerApp.terminals_enabled=False",
            *(["--allow-root"] if os.geteuid() == 0 else []),  # CI and containers run as root
        ]
        env = {
            name: str(home / folder)
            for name, folder in (("JUPYTER_CONFIG_DIR", "config"),
                                 ("JUPYTER_RUNTIME_DIR", "runtime"),
                                 ("JUPYTERLAB_SETTINGS_DIR", "settings"),
                                 ("JUPYTERLAB_WORKSPACES_DIR", "workspaces"))
        }  # fmt: skip
        # no "get Jupyter news?" toast over the diagrams (and the news feed is off anyway)
        notification = home / "settings" / "@jupyterlab" / "apputils-extension"
        notification.mkdir(parents=True)
        (notification / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
        super().__init__(command, port=port, env=env, ready_path="/api", startup_timeout=90)

    def api(self, path: str) -> Any:
        answer = httpx.get(f"{self.url}/api/{path}", params={"token": self.token}, timeout=10)
        answer.raise_for_status()
        return answer.json()


OPEN = """
const [path, done] = [arguments[0], arguments[arguments.length - 1]];
window.jupyterapp.commands.execute('docmanager:open', {
  path, factory: 'Notebook',
  kernelPreference: {shouldStart: false, canStart: false, autoStartDefault: false},
}).then(async (panel) => {
  await panel.context.ready;
  (window.diagramPanels = window.diagramPanels || {})[path] = panel;
  done(null);
}).catch((error) => done(String(error)));
"""

# What @jupyterlab/mermaid rendered in one cell (see the module docstring for the classes).
RENDERED = """
const [path, cellId] = arguments;
const cell = window.diagramPanels[path].content.widgets.find((c) => c.model.id === cellId);
if (!cell) return {state: 'no such cell'};
const box = cell.node.querySelector('.jp-RenderedMermaid');
if (!box) return null;
if (box.classList.contains('jp-mod-warning')) {
  const why = box.querySelector('.jp-RenderedMermaid-Details > pre');
  return {state: 'error', message: (why || box).textContent.trim()};
}
const img = box.querySelector('figure > img');
if (!img || !img.complete) return null;
const src = img.getAttribute('src');
const svg = new DOMParser().parseFromString(
  decodeURIComponent(src.slice(src.indexOf(',') + 1)), 'image/svg+xml');
const nodes = [...svg.querySelectorAll('g.node')];
const size = img.getBoundingClientRect();
return {
  state: 'svg', nodes: nodes.length,
  role: svg.documentElement.getAttribute('aria-roledescription'),
  parse_error: svg.querySelector('parsererror') !== null,
  loaded: img.naturalWidth > 0, width: Math.round(size.width), height: Math.round(size.height),
  drawn_width: svg.documentElement.viewBox.baseVal.width,
};
"""

CELL = """
const [path, cellId] = arguments;
return window.diagramPanels[path].content.widgets.find((c) => c.model.id === cellId).node;
"""
CLOSE = "window.diagramPanels[arguments[0]].close(); delete window.diagramPanels[arguments[0]];"


@pytest.fixture(scope="module")
def broken_notebook() -> Iterator[Path]:
    """A notebook of diagrams the check must reject, under the served root (build/ is not
    committed), removed afterwards."""
    BUILD.mkdir(exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="diagram-check-", dir=BUILD))
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_markdown_cell(f"```mermaid\n{text}```", id=cell_id)
        for cell_id, text in BROKEN.items()
    ]
    path = folder / "broken_diagrams.ipynb"
    nbformat.write(notebook, path)
    yield path
    shutil.rmtree(folder)


@pytest.fixture(scope="module")
def lab(browser: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The lab page, loaded once; afterwards: no kernel or session was started, and the
    server stopped cleanly."""
    with JupyterLab(ROOT, tmp_path_factory.mktemp("jupyterlab")) as server:
        browser.set_script_timeout(60)
        size = browser.get_window_size()
        # 1280 px wide like a laptop; tall enough that 05's ~1,640 px diagram fits a screenshot
        browser.set_window_size(1280, 2600)
        browser.get(f"{server.url}/lab?reset&token={server.token}")
        wait_until(lambda: browser.execute_script("return !!window.jupyterapp"), "JupyterLab", 90)
        browser.execute_async_script("window.jupyterapp.restored.then(arguments[0])")
        yield browser
        kernels, sessions = server.api("kernels"), server.api("sessions")
        browser.get("about:blank")
        browser.set_window_size(size["width"], size["height"])
    assert (kernels, sessions) == ([], []), "opening notebooks must not start a kernel"
    assert server.returncode == 0, f"exit {server.returncode}: {server.output()[-3000:]}"


def rendered_diagrams(lab: Any, notebook: str, cell_ids: list[str]) -> dict[str, Any]:
    """Open ``notebook`` in JupyterLab without a kernel, wait until every cell in
    ``cell_ids`` shows its diagram or its error, and return what each shows."""
    error = lab.execute_async_script(OPEN, notebook)
    assert error is None, f"JupyterLab could not open {notebook}: {error}"
    try:
        rendered = {
            cell_id: wait_until(
                lambda cell_id=cell_id: lab.execute_script(RENDERED, notebook, cell_id),
                f"the Mermaid diagram in {notebook} cell {cell_id} rendering",
                timeout=60,  # the first one loads Mermaid itself; CI runs other tests alongside
            )
            for cell_id in cell_ids
        }
        SHOTS.mkdir(parents=True, exist_ok=True)  # what the student sees, to look at
        for cell_id in cell_ids:
            cell = lab.execute_script(CELL, notebook, cell_id)
            folder = Path(notebook).parent.name if Path(notebook).parent.name in COURSE else "test"
            cell.screenshot(str(SHOTS / f"{folder}-{Path(notebook).stem}-{cell_id}.png"))
        return rendered
    finally:
        lab.execute_script(CLOSE, notebook)


@pytest.mark.parametrize("path", NOTEBOOK_PATHS, ids=lambda path: path.relative_to(ROOT).as_posix())
def test_every_diagram_renders_in_jupyterlab(lab: Any, path: Path) -> None:
    diagrams = diagrams_in(path)
    assert diagrams, f"{path.name} has no ```mermaid block (issue #17: one per notebook)"
    rendered = rendered_diagrams(lab, diagrams[0].notebook, [d.cell_id for d in diagrams])
    for diagram in diagrams:
        shown = rendered[diagram.cell_id]
        if shown["state"] == "svg" and shown["drawn_width"]:
            text_px = 16 * shown["width"] / shown["drawn_width"]  # 16 px, scaled to the cell
            print(f"{diagram.notebook} {diagram.cell_id}: {shown['nodes']} nodes,"
                  f" {shown['width']}x{shown['height']} px, text ~{text_px:.0f} px")  # fmt: skip
        assert diagram_problems(shown, diagram) == [], f"{diagram.notebook} {diagram.cell_id}"


def test_a_broken_or_empty_diagram_is_caught(lab: Any, broken_notebook: Path) -> None:
    notebook = broken_notebook.relative_to(ROOT).as_posix()
    diagram = {cell_id: Diagram(notebook, cell_id, text) for cell_id, text in BROKEN.items()}
    rendered = rendered_diagrams(lab, notebook, [*BROKEN])

    syntax_error = rendered["syntax-error"]
    assert syntax_error["state"] == "error", syntax_error
    assert "Parse error" in syntax_error["message"], syntax_error["message"]
    assert diagram_problems(syntax_error, diagram["syntax-error"])

    one_node = rendered["one-node"]
    assert one_node["state"] == "svg" and one_node["nodes"] == 1, one_node
    assert diagram_problems(one_node, diagram["one-node"]) == [
        f"only 1 node(s) drawn (fewer than {MIN_NODES})"
    ]


def test_flowchart_nodes_reads_ids_not_labels() -> None:
    text = (
        'flowchart LR\n  subgraph s["a --> b"]\n    a["x --> y"] -->|"z"| b{"ok?"}\n  end\n'
        '  b -- "no" --> c[("queue")]\n  c -.-> a & d\n'
    )
    assert flowchart_nodes(text) == {"a", "b", "c", "d"}
    assert flowchart_nodes("sequenceDiagram\n  A->>B: hi\n") is None
