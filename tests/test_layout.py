"""The house's rules, read from the sources: which room may import what, and nobody reads
another module's private names.

    the engine (lambda/)  standard library, boto3, botocore; never the library
    cfn/, provider.py,    standard library only
    testing.py, engine.py
    synth/                aws-cdk-lib and constructs; never boto3, the emulator, the rehearsal, the CLI
    emulator/             moto and boto3; never the engine, synth, the rehearsal or the CLI
    rehearse/, cli/       the emulator and the engine; never aws-cdk-lib

Imports under ``if TYPE_CHECKING:`` are for type checkers and do not count.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ROOT / "constructs" / "iot_job_cleanup"
ENGINE = ROOT / "lambda" / "iot_job_cleanup_handler"
STDLIB = set(sys.stdlib_module_names) | {"__future__"}
LIBRARY_NAME, ENGINE_NAME = "iot_job_cleanup", "iot_job_cleanup_handler"


@dataclass(frozen=True)
class Import:
    module: str  # absolute: "aws_cdk.aws_iam", "iot_job_cleanup.emulator.model"
    names: tuple[str, ...]
    line: int


def _package_of(path: Path) -> str:
    if path.is_relative_to(ENGINE):
        parts = (ENGINE_NAME, *path.relative_to(ENGINE).with_suffix("").parts)
    else:
        parts = (LIBRARY_NAME, *path.relative_to(LIBRARY).with_suffix("").parts)
    return ".".join(parts[:-1])


def _type_checking_only(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def imports_of(source: str, package: str) -> Iterator[Import]:
    """Every import of a module's source, relative ones made absolute, TYPE_CHECKING left out."""
    tree = ast.parse(source)
    hidden = {id(child) for node in ast.walk(tree) if _type_checking_only(node) for child in ast.walk(node)}
    for node in ast.walk(tree):
        if id(node) in hidden:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(alias.name, (), node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            names = tuple(alias.name for alias in node.names)
            if not node.module:  # "from . import emulator": each name is a module
                for name in names:
                    yield Import(f"{base}.{name}", (), node.lineno)
            else:
                yield Import(base, names, node.lineno)


def sources(root: Path) -> list[Path]:
    return sorted(root.rglob("*.py"))


def room_of(path: Path) -> str:
    if path.is_relative_to(ENGINE):
        return "handler"
    first = path.relative_to(LIBRARY).parts[0]
    return first.removesuffix(".py")


def top(module: str) -> str:
    return module.split(".")[0]


def library_room(module: str) -> str | None:
    """'synth' for iot_job_cleanup.synth.policies; None outside the library."""
    parts = module.split(".")
    if parts[0] != LIBRARY_NAME:
        return None
    return parts[1] if len(parts) > 1 else "__init__"


STDLIB_ONLY = {"cfn", "provider", "testing", "engine"}
FORBIDDEN: dict[str, set[str]] = {
    # room -> top-level packages or library rooms it may not import
    "synth": {"boto3", "botocore", "moto", "emulator", "rehearse", "cli", ENGINE_NAME},
    "emulator": {ENGINE_NAME, "synth", "rehearse", "cli", "aws_cdk", "constructs"},
    "rehearse": {"aws_cdk", "constructs", "synth"},
    "cli": {"aws_cdk", "constructs", "synth", "emulator", "rehearse", "moto"},
}
HANDLER_MAY_IMPORT = STDLIB | {"boto3", "botocore", ENGINE_NAME}  # the Lambda runtime's libraries
# A documented exception: the snapshot helper synthesizes a stack, so that one function
# loads aws-cdk-lib when it is called.
ALLOWED = {("testing", "aws_cdk.assertions")}


def broken_rules(path: Path, source: str) -> list[str]:
    room = room_of(path)
    found = []
    for imported in imports_of(source, _package_of(path)):
        outside = top(imported.module)
        inner = library_room(imported.module)
        where = f"{path.relative_to(ROOT)}:{imported.line} imports {imported.module}"
        if (room, imported.module) in ALLOWED:
            continue
        if (
            room in STDLIB_ONLY
            and outside not in STDLIB
            and not (inner in STDLIB_ONLY or inner == "__init__")
        ):
            found.append(f"{where}: {room} uses the standard library only")
        if outside in FORBIDDEN.get(room, ()) or (inner and inner in FORBIDDEN.get(room, ())):
            found.append(f"{where}: {room} may not import it")
        if room == "handler" and outside not in HANDLER_MAY_IMPORT:
            found.append(f"{where}: the engine may not import it (standard library, boto3, botocore)")
    return found


# moto's own way for a response class to read its request: what the emulator's wire patches
# are written in (they stand in for moto's methods).
MOTO_RESPONSE_HELPERS = frozenset({"_get_param", "_get_int_param", "_get_bool_param"})


def private_reads(path: Path, source: str) -> list[str]:
    """``from m import _x``, ``m._x`` or ``obj._x``: a private name of another module or of an
    object the code does not own (``self._x`` and ``cls._x`` are the class's own)."""
    tree = ast.parse(source)
    modules = {
        alias.asname or alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    modules |= {
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and not node.module
        for alias in node.names
    }
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {alias.name}")
        elif isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            owner = ast.unparse(node.value)
            if owner not in ("self", "cls") and node.attr not in MOTO_RESPONSE_HELPERS:
                kind = "module" if owner in modules else "object"
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} reads {owner}.{node.attr} ({kind})")
    return found


ALL_SOURCES = [*sources(LIBRARY), *sources(ENGINE)]


@pytest.mark.parametrize("path", ALL_SOURCES, ids=lambda path: str(path.relative_to(ROOT)))
def test_each_room_imports_only_what_the_house_allows(path: Path) -> None:
    assert broken_rules(path, path.read_text()) == []


TEST_SOURCES = sources(ROOT / "tests")


@pytest.mark.parametrize("path", [*ALL_SOURCES, *TEST_SOURCES], ids=lambda path: str(path.relative_to(ROOT)))
def test_no_module_reads_another_modules_private_names(path: Path) -> None:
    """The tests too: they use the seams (hooks, read APIs), not the rooms' privates."""
    assert private_reads(path, path.read_text()) == []


def import_graph(paths: list[Path], root: Path, name: str) -> dict[str, set[str]]:
    """Which module of a package imports which of its siblings (``__init__`` left out: it
    gathers the public names), from the sources; TYPE_CHECKING imports do not count."""
    modules = {path.stem for path in paths if path.parent == root and path.stem != "__init__"}
    graph: dict[str, set[str]] = {}
    for path in paths:
        if path.stem not in modules:
            continue
        found: set[str] = set()
        for imported in imports_of(path.read_text(), name):
            # "from .guard import X" and "from . import guard" name the module itself;
            # "from iot_job_cleanup_handler import guard" lists it among the names
            if imported.module == name:
                inner = imported.names
            elif imported.module.startswith(f"{name}."):
                inner = tuple(imported.module.split(".")[1:2])
            else:
                continue
            found |= {module for module in inner if module in modules}
        graph[path.stem] = found - {path.stem}
    return graph


def cycle_in(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph, as a path that ends where it began; None when it has none."""
    state: dict[str, str] = {}

    def visit(node: str, trail: list[str]) -> list[str] | None:
        state[node] = "open"
        for after in sorted(graph.get(node, ())):
            if state.get(after) == "open":  # an open module is on the trail: back to it is a cycle
                return [*trail[trail.index(after) :], after]
            if after not in state and (found := visit(after, [*trail, after])):
                return found
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start, [start])):
            return found
    return None


def test_the_engine_imports_in_one_direction() -> None:
    """No engine module imports, at run time, a module that imports it back: the rooms that
    work on a cleanup (``finding``, ``draining``, ``polling``, ``final_look``, ``planning``,
    ``report``) see ``scheduling`` for type checkers only."""
    graph = import_graph(sources(ENGINE), ENGINE, ENGINE_NAME)
    assert {"scheduling", "entry", "guard", "aws"} <= set(graph)
    assert cycle_in(graph) is None, cycle_in(graph)


def test_a_cycle_of_imports_is_caught() -> None:
    assert cycle_in({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert cycle_in({"a": {"b"}, "b": set()}) is None


def test_the_library_has_the_rooms_the_readme_describes() -> None:
    rooms = {path.name for path in LIBRARY.iterdir() if path.is_dir() and (path / "__init__.py").exists()}
    assert {"cfn", "synth", "emulator", "rehearse", "cli"} <= rooms


# --------------------------------------------------------------------------- the checks can fail


@pytest.mark.parametrize(
    ("where", "source", "broken"),
    [
        (LIBRARY / "synth" / "construct.py", "import boto3\n", "synth may not import it"),
        (LIBRARY / "synth" / "construct.py", "from ..emulator import LifecycleClient\n", "synth may not"),
        (LIBRARY / "rehearse" / "deploy.py", "from aws_cdk import Stack\n", "rehearse may not"),
        (LIBRARY / "cli" / "run.py", "import aws_cdk.aws_iam as iam\n", "cli may not"),
        (LIBRARY / "emulator" / "model.py", "import iot_job_cleanup_handler\n", "emulator may not"),
        (LIBRARY / "cfn" / "intrinsics.py", "import boto3\n", "cfn uses the standard library only"),
        (LIBRARY / "provider.py", "from .emulator import DeletionLifecycle\n", "standard library only"),
        (ENGINE / "scheduling.py", "from iot_job_cleanup import engine\n", "the engine may not"),
        (ENGINE / "guard.py", "import moto\n", "the engine may not"),
    ],
)
def test_a_broken_rule_is_caught(where: Path, source: str, broken: str) -> None:
    assert any(broken in problem for problem in broken_rules(where, source))


def test_an_import_for_type_checkers_only_is_no_dependency() -> None:
    source = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import aws_cdk\n"
    assert broken_rules(LIBRARY / "rehearse" / "deploy.py", source) == []


def test_reading_another_modules_private_name_is_caught() -> None:
    source = "from . import emulator\nfrom .engine import _cache\nemulator._lock\n"
    assert len(private_reads(LIBRARY / "rehearse" / "deploy.py", source)) == 2
