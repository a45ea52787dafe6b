"""environment.yml (conda users) must carry exactly the lock's pins."""

from __future__ import annotations

import yaml

from course_pkg import paths
from course_pkg.preflight import normalize_name, parse_lock


def disagreements(lock_text: str, environment_text: str) -> list[str]:
    """Every pin that differs between the lock and environment.yml, as readable lines."""
    env = yaml.safe_load(environment_text)
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    env_pins = parse_lock("\n".join(str(item) for item in pip_section))
    lock_pins = parse_lock(lock_text)
    problems = [
        f"{name}: lock {version}, environment.yml {env_pins.get(name, 'missing')}"
        for name, version in sorted(lock_pins.items())
        if env_pins.get(name) != version
    ]
    problems += [
        f"{name}: in environment.yml only" for name in sorted(set(env_pins) - set(lock_pins))
    ]
    python = [d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python")]
    if python != ["python=3.11"]:
        problems.append(f"python must be pinned to 3.11, got {python}")
    return problems


def test_environment_yml_matches_the_lock() -> None:
    problems = disagreements(
        paths.LOCK_FILE.read_text(), (paths.ROOT / "environment.yml").read_text()
    )
    assert problems == [], "run `make lock` to regenerate environment.yml:\n" + "\n".join(problems)


def test_a_changed_pin_is_reported() -> None:
    lock = paths.LOCK_FILE.read_text()
    env = (paths.ROOT / "environment.yml").read_text()
    numpy = parse_lock(lock)["numpy"]
    tampered = env.replace(f"numpy=={numpy}", "numpy==1.26.4")
    assert disagreements(lock, tampered) == [f"numpy: lock {numpy}, environment.yml 1.26.4"]


def test_extra_and_missing_packages_are_reported() -> None:
    lock = paths.LOCK_FILE.read_text()
    env = (paths.ROOT / "environment.yml").read_text()
    tampered = env.replace("      - six==", "      - sixx==")
    problems = disagreements(lock, tampered)
    assert any(p.startswith("six: lock") and "missing" in p for p in problems)
    assert any(p.startswith(normalize_name("sixx")) and "only" in p for p in problems)
