# Every target is idempotent: run any of them any number of times, in any order.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
REGISTRY ?= 127.0.0.1:5000
BASE_IMAGE ?= course-base:bookworm-py311
# torch's +cpu wheel is not on PyPI: take it from a local wheel directory when the machine has
# one, else from PyTorch's CPU index. Override: make setup TORCH_WHEELS="--find-links DIR".
TORCH_WHEELS ?= $(if $(wildcard /opt/wheels/torch-2.13.0+cpu-*),--find-links /opt/wheels,--extra-index-url https://download.pytorch.org/whl/cpu)
# pip on some machines lists file:// indexes that lack most packages; hide that one warning.
QUIET_PIP := grep -v "is ignored: it is neither a file nor a directory" || true
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)

.PHONY: help setup system-deps lab test test-fast lint unit notebooks docker-env grader-image server-image image-context grade-demo assign solutions lock image manifests publish transactions clean peers-venv peers-bench

help:  ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

setup: $(STAMP)  ## create .venv from requirements.lock and register the Jupyter kernel

$(STAMP): requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), f"need Python 3.11, found {sys.version.split()[0]}: install python3.11 or pass PYTHON=/path/to/python3.11"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# --no-deps: the lock is the whole closure (uv), so pip installs exactly it and resolves nothing
	# (resolving would meet extras such as sigstore's pydantic[email], which hash-checking mode
	# refuses as unpinned); pip check then proves the set is consistent.
	$(BIN)/python -m pip install -q --no-deps --require-hashes -r requirements.lock $(TORCH_WHEELS) 2>&1 | { $(QUIET_PIP); }
	$(BIN)/python -m pip check
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e . 2>&1 | { $(QUIET_PIP); }
	$(BIN)/python -m ipykernel install --sys-prefix --name course-mlops --display-name "Python (course-mlops)" --env ORT_DISABLE_TELEMETRY 1 >/dev/null
	touch $@

lab: setup  ## open JupyterLab on notebooks/ (http://127.0.0.1:8888)
	$(BIN)/jupyter lab --ServerApp.ip=127.0.0.1 --ServerApp.root_dir=notebooks $(ROOT_FLAG)

system-deps:  ## install the Debian packages the tests use (root; else print the command)
	scripts/system-deps

docker-env:  ## start a Docker engine and build the local base image (needs root; optional off CI)
	@if scripts/docker-up && BASE_IMAGE=$(BASE_IMAGE) scripts/build-base-image; then :; \
	elif [ "$${CI:-}" = true ]; then echo "make: CI needs a Docker engine" >&2; exit 1; \
	else echo "make: no Docker engine here; Docker tests will skip with that reason"; fi

grader-image: setup docker-env  ## build the grading image course-grader:latest (offline wheelhouse)
	@if docker info >/dev/null 2>&1; then $(BIN)/grader build-image --base-image $(BASE_IMAGE); \
	elif [ "$${CI:-}" = true ]; then echo "make: CI needs Docker for the grading image" >&2; exit 1; \
	else echo "make: no Docker engine; grader container tests will skip"; fi

grade-demo: grader-image  ## grade the sample submissions (good, partial, broken, hostile) for notebook 00
	rm -rf build/grade-demo
	$(BIN)/python -c 'from pathlib import Path; from grader.samples import write_samples; write_samples("00_setup_check.ipynb", Path("build/grade-demo/submissions"))'
	$(BIN)/grader grade build/grade-demo/submissions --assignment 00 --out build/grade-demo/results --jobs 2 --cell-timeout 20 --timeout 150
	column -s, -t < build/grade-demo/results/gradebook.csv

lint: setup  ## ruff + mypy + deptry (declared dependencies) + lint-imports (layering)
	$(BIN)/ruff check course_pkg grader tests scripts benchmarks loadtests conftest.py
	$(BIN)/ruff format --check course_pkg grader tests benchmarks loadtests conftest.py
	$(BIN)/mypy
	$(BIN)/deptry . --config deptry.toml
	$(BIN)/lint-imports

unit: setup  ## unit + integration tests only
	# two workers (-n 2): most integration tests wait on servers, containers and timeouts, so
	# the second core fills those waits. --dist loadfile keeps a file on one worker: its
	# module-scoped servers, images and clusters are made once, and no other worker's teardown
	# removes them. (Not loadgroup: with pytest 9.2 it silently ignores xdist_group marks,
	# pytest-xdist issue #1386.)
	$(BIN)/python -m pytest tests --durations=25 -m "not gradio_leak" -n 2 --dist loadfile
	# gradio launched in-process keeps threads that outlive their test (a full-suite run
	# failed there and then lost sys.stderr): those tests run in a process of their own
	$(BIN)/python -m pytest tests -m gradio_leak

notebooks: setup  ## execute solutions/ (outputs compared) and notebooks/ (lax), side by side
	PY=$(BIN)/python scripts/run-notebooks

test: setup system-deps lint docker-env grader-image server-image unit notebooks  ## everything CI runs (lint first: it fails in seconds)

test-fast: setup lint  ## lint + tests that start no process or container, on both cores
	# not gradio_leak: those launch gradio's server in process and leave its event loop to the
	# garbage collector, which then fails whichever test it lands in (`make unit` runs them apart)
	$(BIN)/python -m pytest tests -m "not integration and not docker and not slow and not gradio_leak" -q -n 2

assign: setup  ## regenerate notebooks/ from solutions/
	$(BIN)/grader assign

solutions: setup  ## re-execute solutions/ in place (refresh stored outputs), then assign
	$(BIN)/grader execute solutions/*.ipynb
	$(BIN)/grader assign

peers-venv: setup  ## build/peers-venv: LitServe, BentoML, Ray Serve… for benchmarks/peers_bench.py
	$(BIN)/uv venv -q --allow-existing --python $(BIN)/python build/peers-venv
	$(BIN)/uv pip install -q --native-tls --python build/peers-venv/bin/python -r benchmarks/peers.in

peers-bench: peers-venv  ## ours vs the minimal handler, LitServe, BentoML, Ray Serve, MLflow, TorchServe
	$(BIN)/python benchmarks/peers_bench.py --workers-scale

lock: setup  ## recompile requirements.lock from requirements.in, then environment.yml
	$(BIN)/uv pip compile requirements.in --native-tls -q --python-version 3.11 \
	    --python-platform x86_64-manylinux_2_28 --find-links /opt/wheels --generate-hashes \
	    --no-emit-find-links --custom-compile-command "make lock" -o requirements.lock
	$(BIN)/uv pip compile requirements-serve.in -c requirements.lock --native-tls -q \
	    --python-version 3.11 --python-platform x86_64-manylinux_2_28 --generate-hashes \
	    --custom-compile-command "make lock" -o requirements-serve.lock
	$(BIN)/python scripts/lock-to-environment

image-context: setup  ## put what `docker build .` copies into build/ (serve wheels + churn model)
	$(BIN)/python -c "from course_pkg.containers import prepare_context; prepare_context()"

image: setup docker-env  ## build model-server:dev (wheels + churn model into build/, offline build)
	$(BIN)/course-pkg image build --tag model-server:dev

server-image: setup docker-env  ## model-server:dev when an engine runs (notebook 06 and its checks use it)
	@if docker info >/dev/null 2>&1; then $(BIN)/course-pkg image build --tag model-server:dev; \
	elif [ "$${CI:-}" = true ]; then echo "make: CI needs Docker for the server image" >&2; exit 1; \
	else echo "make: no Docker engine; server-image tests will skip"; fi

manifests: setup  ## regenerate deploy/kubernetes/ (sized from the measured per-core throughput)
	$(BIN)/course-pkg kubernetes --peak-rps 10000 --per-core-rps 5000 \
	    --out deploy/kubernetes/churn-server.yaml

publish: image  ## tag model-server (semver, git sha, model version) and push to REGISTRY
	$(BIN)/course-pkg image publish model-server:dev --registry $(REGISTRY)

transactions: setup  ## generate build/transactions.parquet (10M rows, ~1 min)
	$(BIN)/course-pkg data transactions --rows 10000000 --out build/transactions.parquet

clean:  ## remove the venv and generated files (keeps datasets/ and notebooks/)
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache
