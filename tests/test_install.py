"""Reproducible installs: every imported package declared, the lock pins all of them, the venv follows it."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import PackageNotFoundError, packages_distributions, version
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def _declared(extras: tuple[str, ...] = ()) -> dict[str, Requirement]:
    requirements = [Requirement(text) for text in PROJECT["dependencies"]]
    for extra in extras:
        requirements += [Requirement(text) for text in PROJECT["optional-dependencies"][extra]]
    return {canonicalize_name(requirement.name): requirement for requirement in requirements}


def _locked() -> dict[str, str]:
    text = (ROOT / "requirements-lock.txt").read_text(encoding="utf-8")
    return {
        canonicalize_name(name): pinned
        for name, pinned in re.findall(r"^([A-Za-z0-9._-]+)==([^\s\\;]+)", text, re.MULTILINE)
    }


def _imported_top_level(folder: Path) -> set[str]:
    names = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"winmodel", "__future__"}


def test_every_package_the_library_imports_is_declared():
    distributions = packages_distributions()
    declared = _declared(("spark",))
    undeclared = {
        name: distributions.get(name, [name])
        for name in _imported_top_level(ROOT / "src" / "winmodel")
        if not any(canonicalize_name(d) in declared for d in distributions.get(name, [name]))
    }
    assert not undeclared, f"imported but not declared in pyproject.toml: {undeclared}"


def test_the_lock_pins_every_declared_package_within_its_range():
    locked = _locked()
    for name, requirement in _declared(("dev", "spark", "postgres")).items():
        assert name in locked, f"{name} is declared but not in requirements-lock.txt (make lock)"
        assert requirement.specifier.contains(locked[name], prereleases=True), (
            f"requirements-lock.txt pins {name}=={locked[name]}, outside {requirement}"
        )


def test_the_virtualenv_holds_the_locked_versions():
    """make setup installs from the lock: what runs the tests is what the lock says."""
    locked = _locked()
    different = {}
    for name in _declared(("dev", "spark", "postgres")):
        try:
            installed = version(name)
        except PackageNotFoundError:
            different[name] = "not installed"
            continue
        if installed != locked[name]:
            different[name] = f"{installed} installed, {locked[name]} locked"
    assert not different, f"run `make setup` again (or `make lock`): {different}"
