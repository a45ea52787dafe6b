"""``course-pkg``: the command line of the reference implementation.

Each subcommand imports what it needs when it runs, so ``course-pkg --help`` stays instant.

Exit codes, one map (``EXIT_CODES``, applied in ``main``):

- 0: success.
- 1: the thing checked or attempted is not OK: doctor or ``data verify`` find a problem, a
  package fails verification (``ArtifactError``), an export fails parity (``ParityError``),
  ``scan`` finds code that would run, Docker, a registry or Redis refuses (``CommandFailed``).
- 2: usage: a flag or argument the command cannot use (``UsageError``, argparse's own errors,
  a flag of another model), a named input that does not exist, an output that exists
  without ``--overwrite``, a value that does not parse (``ValueError``).

Handlers return 0 or 1 for their own verdicts and raise for everything else; an exception
outside the map is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from course_pkg.errors import CommandFailed, CourseError, UsageError

# (exception, exit code), first match wins: ValueError before CourseError, so a CourseError
# that is also a ValueError (InputError, UsageError) is a usage error.
EXIT_CODES: tuple[tuple[type[BaseException], int], ...] = (
    (UsageError, 2),
    (FileExistsError, 2),  # an output exists and --overwrite was not given
    (FileNotFoundError, 2),  # a named input does not exist
    (IsADirectoryError, 2),
    (NotADirectoryError, 2),
    (ValueError, 2),  # a value the command cannot use (pydantic's ValidationError too)
    (CourseError, 1),  # verification, parity, external commands
    (OSError, 1),  # other I/O failures: disk full, permissions
)


def exit_code(error: BaseException) -> int | None:
    """The exit code for an error a user can cause; None for anything else (a bug)."""
    return next((code for kind, code in EXIT_CODES if isinstance(error, kind)), None)


def _doctor(args: argparse.Namespace) -> int:
    from course_pkg.preflight import run_preflight

    report = run_preflight()
    print(report.as_text())
    return 0 if report.ok else 1


def _data_build(args: argparse.Namespace) -> int:
    from course_pkg.datasets import build_all

    for name in build_all():
        print(f"wrote datasets/{name}")
    return 0


def _data_verify(args: argparse.Namespace) -> int:
    from course_pkg.datasets import verify_sums

    problems = verify_sums()
    for line in problems:
        print(f"FAIL {line}", file=sys.stderr)
    if not problems:
        print("OK: every shipped data file matches datasets/SHA256SUMS")
    return 1 if problems else 0


def _data_transactions(args: argparse.Namespace) -> int:
    import time

    from course_pkg.datasets import write_transactions

    if args.rows < 0:
        raise UsageError("--rows must be ≥ 0")
    if args.out.suffix.lower() not in {".csv", ".parquet"}:
        raise UsageError(f"--out {args.out}: use a .csv or .parquet file name")
    started = time.perf_counter()
    write_transactions(args.out, args.rows, seed=args.seed)
    seconds = time.perf_counter() - started
    size_mb = args.out.stat().st_size / 1e6
    print(f"wrote {args.rows:,} rows to {args.out} ({size_mb:.1f} MB) in {seconds:.1f} s")
    return 0


# What each model's trainer takes beyond --out/--version/--overwrite/--sign-key (which all
# honour): --seed everywhere, --estimator where there is a choice, --formats for churn only.
_DIGITS_ESTIMATORS = ("logreg", "mlp")


def _train_options(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments for the chosen model's trainer; a flag it would ignore is refused."""
    from course_pkg.training import ESTIMATORS

    estimators = {"churn": ESTIMATORS, "digits": _DIGITS_ESTIMATORS, "fraud": ()}
    if args.model not in estimators:
        raise UsageError(f"unknown model {args.model!r}; choose churn, digits or fraud")
    options: dict[str, Any] = {"version": args.version, "overwrite": args.overwrite}
    if args.seed is not None:
        options["seed"] = args.seed
    if args.estimator is not None:
        allowed = estimators[args.model]
        if not allowed:
            raise UsageError(
                f"--estimator applies to churn ({', '.join(ESTIMATORS)}) and digits "
                f"({', '.join(_DIGITS_ESTIMATORS)}); fraud has one estimator (logistic regression)"
            )
        if args.estimator not in allowed:
            raise UsageError(
                f"--estimator {args.estimator!r}: {args.model} takes {', '.join(allowed)}"
            )
        options["estimator"] = args.estimator
    if args.formats is not None:
        if args.model != "churn":
            raise UsageError(
                f"--formats applies to churn only; {args.model} is always packaged as onnx + skops"
            )
        options["formats"] = tuple(f.strip() for f in args.formats.split(",") if f.strip())
    if args.sign_key is not None and not args.sign_key.is_file():
        raise UsageError(f"--sign-key {args.sign_key}: no such file (`course-pkg keygen`)")
    return options


def _train(args: argparse.Namespace) -> int:
    from course_pkg import training

    options = _train_options(args)  # before training: a refused flag costs no time
    builders: dict[str, Callable[..., Any]] = {
        "churn": training.package_churn,
        "digits": training.package_digits,
        "fraud": training.package_fraud,
    }
    package = builders[args.model](args.out, **options)
    manifest = package.manifest
    print(f"packaged {manifest['name']} {manifest['version']} → {package.path}")
    for name, entry in sorted(manifest["files"].items()):
        print(f"  {name:<18} {entry['bytes']:>9,} B  sha256 {entry['sha256'][:16]}…")
    print("  metrics: " + ", ".join(f"{k}={v}" for k, v in manifest["metrics"].items()))
    if args.sign_key:
        from course_pkg.artifacts import ArtifactError, sign_package

        try:
            sign_package(package.path, args.sign_key)
        except (ArtifactError, OSError) as error:
            raise CommandFailed(f"the package was written but not signed: {error}") from error
        print(f"  signed with {args.sign_key} (model.sig)")
    return 0


def _keygen(args: argparse.Namespace) -> int:
    from course_pkg.artifacts import generate_keypair

    private, public = generate_keypair(args.out)
    print(f"private key: {private} (keep it secret, mode 0600)\npublic key:  {public}")
    return 0


def _sign(args: argparse.Namespace) -> int:
    from course_pkg.artifacts import sign_package, upgrade_signature, verify_package

    if args.upgrade and args.legacy_key is None:
        raise UsageError(
            "--upgrade needs --legacy-key OLD.pub (the Ed25519 public key that verifies the "
            "manifest.sig being replaced)"
        )
    if args.upgrade:
        target = upgrade_signature(args.package, args.key, args.legacy_key)
    else:
        verify_package(args.package)  # never sign a package that does not match its manifest
        target = sign_package(args.package, args.key)
    replaced = " (replaced manifest.sig)" if args.upgrade else ""
    print(f"signed: {target} (OpenSSF model-signing bundle){replaced}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    from course_pkg.artifacts import verify_package

    manifest = verify_package(args.package, args.key)
    signed = "signature valid, " if args.key else "not checking a signature (no --key), "
    print(
        f"OK {manifest['name']} {manifest['version']}: {signed}{len(manifest['files'])} files match"
    )
    return 0


def _scan(args: argparse.Namespace) -> int:
    from course_pkg.artifacts import scan_file

    not_safe = 0
    for path in args.paths:
        verdict = scan_file(path)
        if verdict.safe:
            print(f"SAFE    {path} ({verdict.kind}; {len(verdict.globals)} allowlisted globals)")
            continue
        not_safe += 1
        label = {"unreadable": "ERROR", "unknown": "UNKNOWN"}.get(verdict.kind, "UNSAFE")
        print(f"{label:<7} {path} ({verdict.kind}): {verdict.reason}")
    return 1 if not_safe else 0


def _export_onnx(args: argparse.Namespace) -> int:
    from course_pkg.artifacts import export_package
    from course_pkg.onnx_export import describe

    frame = None
    if args.parity_data is not None:
        import pandas as pd

        try:
            frame = pd.read_csv(args.parity_data)
        except (OSError, ValueError) as error:
            raise UsageError(f"--parity-data {args.parity_data}: {error}") from error
    package = export_package(
        args.package, args.out, public_key=args.key, parity_frame=frame, overwrite=args.overwrite
    )
    parity = package.manifest["extra"]["parity"]
    print(f"exported {package.manifest['name']} {package.manifest['version']} → {package.path}")
    print(
        f"  parity on {parity['rows']} rows: labels {parity['label_agreement']:.2%}, "
        f"max |Δp| {parity['max_abs_proba_diff']:.2g} (tolerance {parity['proba_atol']:g})"
    )
    print("  " + describe(package.model_path).as_text().replace("\n", "\n  "))
    return 0


def _inspect_onnx(args: argparse.Namespace) -> int:
    from course_pkg.onnx_export import describe

    try:
        print(describe(args.model).as_text())
    except (OSError, ValueError) as error:  # not a file, or not an ONNX model: the argument
        raise UsageError(f"{args.model}: {error}") from error
    return 0


def _serve(args: argparse.Namespace) -> int:
    from course_pkg.serving import ServerSettings, serve

    overrides = {
        key: value
        for key, value in {
            "host": args.host,
            "port": args.port,
            "workers": args.workers,
            "log_level": args.log_level,
            "public_key": args.key,
        }.items()
        if value is not None
    }
    serve(args.model_dirs, ServerSettings(**overrides))  # ValidationError is a ValueError: 2
    return 0


def _worker(args: argparse.Namespace) -> int:
    from redis.exceptions import RedisError

    from course_pkg.artifacts import load_public_key
    from course_pkg.serving import ServerSettings
    from course_pkg.serving.jobs import work

    settings = ServerSettings(**({"public_key": args.key} if args.key else {}))
    try:
        work(
            args.model_dirs,
            args.redis_url or settings.redis_url or "redis://127.0.0.1:6379/0",
            burst=args.burst,
            public_key=load_public_key(settings.public_key) if settings.public_key else None,
            require_signature=settings.require_signature,
        )
    except RedisError as error:
        raise CommandFailed(f"Redis: {type(error).__name__}: {error}") from error
    return 0


def _batch_score(args: argparse.Namespace) -> int:
    import datetime as dt
    import time

    from course_pkg.batch import score_file

    runs = 0
    while True:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H%M%SZ")
        output = Path(str(args.out).replace("{date}", stamp))
        summary = score_file(
            args.package,
            args.input,
            output,
            chunk_rows=args.chunk_rows,
            workers=args.workers,
            rejects_path=args.rejects,
            resume=not args.no_resume,
            progress=not args.quiet,
            engine=args.engine,
            address=args.address,
            public_key=args.key,
        )
        print(summary.as_text())
        if summary.rejects:
            print(f"rejected rows and reasons: {summary.rejects}")
        runs += 1
        if args.every is None or (args.times is not None and runs >= args.times):
            return 0
        time.sleep(args.every)


def _image_build(args: argparse.Namespace) -> int:
    from course_pkg import containers

    containers.prepare_context(args.model)
    try:
        built = containers.build_image(
            args.tag, base_image=args.base_image, build_base_image=args.build_image
        )
    except RuntimeError as error:
        raise CommandFailed(f"docker build: {error}") from error
    print(
        f"built {built.tag} ({built.image_id[:19]}) in {built.seconds:.0f} s, "
        f"{built.size_bytes / 1e6:.0f} MB"
    )
    for key, value in sorted(built.labels.items()):
        print(f"  {key}={value}")
    return 0


def _image_publish(args: argparse.Namespace) -> int:
    from course_pkg import containers

    try:
        labels = containers.client().images.get(args.image).labels
        tags = containers.tags_for(
            labels["org.opencontainers.image.version"],
            labels["org.opencontainers.image.revision"],
            labels["io.course.model.version"],
        )
        repository = f"{args.registry}/{args.repository}"
        containers.tag_image(args.image, repository, tags)
        for tag in tags:
            digest = containers.push(repository, tag)
            print(f"pushed {repository}:{tag}  {digest}")
    except Exception as error:  # docker SDK errors: no engine, no image, registry down
        raise CommandFailed(str(error)) from error
    print(f"pull it exactly: docker pull {repository}@{digest}")
    return 0


def _kubernetes(args: argparse.Namespace) -> int:
    from course_pkg import kubernetes

    plan = kubernetes.plan_capacity(
        args.peak_rps, args.per_core_rps, target_utilization=args.utilization
    )  # ValueError for an impossible plan: exit 2
    docs = kubernetes.manifests(args.image, plan)
    kubernetes.validate(docs)
    header = (
        "# Generated by: course-pkg kubernetes "
        f"--image {args.image} --peak-rps {args.peak_rps:g} --per-core-rps {args.per_core_rps:g}"
        f" --utilization {args.utilization:g}\n"
        f"# {plan.explain()}\n"
        f"# Validated against the Kubernetes {kubernetes.KUBERNETES_VERSION} API schemas "
        "(kubernetes-validate, strict); not applied to a cluster.\n"
    )
    text = header + kubernetes.to_yaml(docs)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
        print(f"wrote {args.out}: {plan.explain()}")
    else:
        print(text, end="")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from course_pkg.version import __version__

    parser = argparse.ArgumentParser(
        prog="course-pkg", description="Reference tools for packaging and serving ML models."
    )
    parser.add_argument("--version", action="version", version=f"course-pkg {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    doctor = sub.add_parser("doctor", help="check this machine is ready for the course")
    doctor.set_defaults(func=_doctor)

    data = sub.add_parser("data", help="build, verify or generate datasets")
    data_sub = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    data_sub.add_parser("build", help="regenerate datasets/ and SHA256SUMS").set_defaults(
        func=_data_build
    )
    data_sub.add_parser("verify", help="check datasets/ against SHA256SUMS").set_defaults(
        func=_data_verify
    )
    tx = data_sub.add_parser("transactions", help="generate the big transactions file")
    tx.add_argument("--rows", type=int, default=10_000_000, help="rows (default 10,000,000)")
    tx.add_argument("--out", type=Path, required=True, help="output .csv or .parquet")
    tx.add_argument("--seed", type=int, default=7, help="generator seed (default 7)")
    tx.set_defaults(func=_data_transactions)

    from course_pkg.training import DEFAULT_FORMATS, ESTIMATORS, SEED

    train = sub.add_parser("train", help="train and package the reference model")
    train.add_argument("model", help="churn (tabular), digits (images) or fraud (transactions)")
    train.add_argument("--out", type=Path, required=True, help="package directory to write")
    train.add_argument(
        "--estimator",
        help=f"churn: {', '.join(ESTIMATORS)} (default logreg); digits: "
        f"{', '.join(_DIGITS_ESTIMATORS)} (default logreg); fraud: none to choose",
    )
    train.add_argument("--version", default="1.0.0", help="semantic version (default 1.0.0)")
    train.add_argument("--seed", type=int, help=f"training seed (default {SEED})")
    train.add_argument(
        "--formats",
        help="churn only, comma-separated: onnx, skops, pickle, joblib, joblib-compressed "
        f"(first is served; default {','.join(DEFAULT_FORMATS)}); digits and fraud: onnx + skops",
    )
    train.add_argument("--sign-key", type=Path, help="private key to sign the package with")
    train.add_argument("--overwrite", action="store_true", help="replace an existing package")
    train.set_defaults(func=_train)

    keygen = sub.add_parser(
        "keygen", help="create an ECDSA P-256 key pair for OpenSSF model signing"
    )
    keygen.add_argument("--out", type=Path, default=Path("keys"), help="directory (default keys/)")
    keygen.set_defaults(func=_keygen)

    sign = sub.add_parser(
        "sign", help="sign every file of a package in the OpenSSF model-signing format (model.sig)"
    )
    sign.add_argument("package", type=Path)
    sign.add_argument("--key", type=Path, default=Path("keys/signing_key.pem"))
    sign.add_argument(
        "--upgrade",
        action="store_true",
        help="replace a deprecated manifest.sig (checked with --legacy-key first) by model.sig",
    )
    sign.add_argument("--legacy-key", type=Path, help="with --upgrade: the old Ed25519 public key")
    sign.set_defaults(func=_sign)

    verify = sub.add_parser("verify", help="check a package's files (and signature with --key)")
    verify.add_argument("package", type=Path)
    verify.add_argument(
        "--key", type=Path, help="public key; without it the signature is not checked"
    )
    verify.set_defaults(func=_verify)

    scan = sub.add_parser("scan", help="scan model files for code that would run on load")
    scan.add_argument("paths", nargs="+", type=Path)
    scan.set_defaults(func=_scan)

    export = sub.add_parser("export-onnx", help="export a packaged sklearn model to ONNX")
    export.add_argument("package", type=Path, help="package written by `course-pkg train`")
    export.add_argument("--out", type=Path, required=True, help="ONNX package directory")
    export.add_argument(
        "--parity-data", type=Path, help="CSV of held-out rows (default: churn test split)"
    )
    export.add_argument("--overwrite", action="store_true", help="replace an existing package")
    export.add_argument("--key", type=Path, help="verify the source package's signature first")
    export.set_defaults(func=_export_onnx)

    inspect_onnx = sub.add_parser("inspect-onnx", help="inputs, outputs, opsets and ops of a file")
    inspect_onnx.add_argument("model", type=Path, help="a .onnx file")
    inspect_onnx.set_defaults(func=_inspect_onnx)

    serve = sub.add_parser("serve", help="serve packaged models over HTTP (FastAPI + uvicorn)")
    serve.add_argument("model_dirs", nargs="+", type=Path, help="package directories")
    serve.add_argument("--host", help="bind address (default 127.0.0.1)")
    serve.add_argument(
        "--port", type=int, help="port (default: COURSE_SERVE_PORT, else PORT, else 8000)"
    )
    serve.add_argument("--workers", type=int, help="worker processes (default 1)")
    serve.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    serve.add_argument("--key", type=Path, help="public key: refuse packages not signed with it")
    serve.set_defaults(func=_serve)

    worker = sub.add_parser(
        "worker", help="take prediction jobs off the Redis queue (POST /v1/jobs on the server)"
    )
    worker.add_argument("model_dirs", nargs="+", type=Path, help="the server's package dirs")
    worker.add_argument(
        "--redis-url", help="default: COURSE_SERVE_REDIS_URL, else redis://127.0.0.1:6379/0"
    )
    worker.add_argument("--burst", action="store_true", help="exit when the queue is empty")
    worker.add_argument("--key", type=Path, help="public key: refuse packages not signed with it")
    worker.set_defaults(func=_worker)

    batch = sub.add_parser("batch-score", help="score a big CSV/Parquet file in chunks")
    batch.add_argument("package", type=Path, help="an ONNX model package")
    batch.add_argument("input", type=Path, help=".csv or .parquet")
    batch.add_argument(
        "--out",
        required=True,
        help=".parquet (a dataset directory of parts) or .csv; '{date}' becomes the run's time",
    )
    batch.add_argument("--chunk-rows", type=int, default=65_536)
    batch.add_argument("--workers", type=int, default=1, help="threads (local) or actors (ray)")
    batch.add_argument(
        "--engine",
        choices=["local", "ray"],
        default="local",
        help="local: threads of this machine; ray: Ray Data (a local runtime, or --address)",
    )
    batch.add_argument("--address", help="with --engine ray: an existing cluster, e.g. HOST:6379")
    batch.add_argument("--rejects", type=Path, help="default: <out>.rejects.csv")
    batch.add_argument("--no-resume", action="store_true", help="start over, discard parts")
    batch.add_argument("--quiet", action="store_true", help="no progress bar")
    batch.add_argument("--key", type=Path, help="verify the package's signature with this key")
    batch.add_argument("--every", type=float, help="repeat every N seconds (a simple scheduler)")
    batch.add_argument("--times", type=int, help="with --every: stop after this many runs")
    batch.set_defaults(func=_batch_score)

    image = sub.add_parser("image", help="build and publish the model-server image (Docker)")
    image_sub = image.add_subparsers(dest="image_command", required=True, metavar="ACTION")
    build = image_sub.add_parser("build", help="prepare build/ and docker build the server")
    build.add_argument("--tag", default="model-server:dev")
    build.add_argument("--model", type=Path, help="package to bake in (default: churn)")
    build.add_argument("--base-image", default="course-base:bookworm-py311-slim")
    build.add_argument("--build-image", default="course-base:bookworm-py311")
    build.set_defaults(func=_image_build)
    publish = image_sub.add_parser("publish", help="tag (semver, git sha, model) and push")
    publish.add_argument("image", help="local image, e.g. model-server:dev")
    publish.add_argument("--registry", default="127.0.0.1:5000")
    publish.add_argument("--repository", default="model-server")
    publish.set_defaults(func=_image_publish)
    k8s = sub.add_parser(
        "kubernetes", help="Deployment, Service, HPA and PDB sized from measured throughput"
    )
    k8s.add_argument("--image", default="127.0.0.1:5000/model-server:1.0.0")
    k8s.add_argument("--peak-rps", type=float, required=True, help="expected peak req/s")
    k8s.add_argument(
        "--per-core-rps", type=float, required=True, help="measured: one worker on one core"
    )
    k8s.add_argument("--utilization", type=float, default=0.6, help="HPA CPU target")
    k8s.add_argument("--out", type=Path, help="write here instead of stdout")
    k8s.set_defaults(func=_kubernetes)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)  # argparse exits 2 on its own usage errors
    try:
        return int(args.func(args))
    except Exception as error:
        code = exit_code(error)
        if code is None:
            raise  # a bug: keep the traceback
        plain = code == 2 or isinstance(error, CommandFailed)
        print(
            f"error: {error}" if plain else f"FAIL {type(error).__name__}: {error}", file=sys.stderr
        )
        return code


if __name__ == "__main__":
    raise SystemExit(main())
