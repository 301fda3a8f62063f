"""The layout stays easy to see: dependencies point one way, each library has one owner.

    cli -> daemon -> pipeline -> steps -> config -> model / errors
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "feedsvc"

# module (first part under feedsvc) -> the feedsvc modules it may import
LAYERS: dict[str, set[str]] = {
    "model": set(),
    "errors": set(),
    "uri": set(),
    "abandon": set(),  # the registry a stuck `run` job is cut off through (fetchers, stores)
    "config": {"model", "errors"},
    "decode": {"model", "errors"},
    "fetch": {"model", "errors", "config", "decode", "uri", "abandon"},
    "extract": {"model", "errors", "config", "extract", "uri"},
    "normalize": {"model", "errors", "config", "normalize", "uri"},
    "dedupe": {"model", "errors", "config"},
    "store": {"model", "errors", "config", "dedupe"},
    "publish": {"model", "errors", "config"},
    "websub": {"model", "errors", "config"},
    "serve": {"model", "errors", "config"},
    "lock": {"model", "errors"},
    "pipeline": {"model", "errors", "config", "fetch", "extract", "normalize", "dedupe", "store", "publish",
                 "websub", "abandon"},
    "fleet": {"model", "errors", "config", "store"},
    "daemon": {"model", "errors", "config", "pipeline", "lock", "serve", "cli", "abandon", "fleet"},
    "configfile": {"model", "errors", "config"},
    "cli": {"model", "errors", "config", "pipeline", "daemon", "lock", "store", "serve", "configfile", "fleet"},
    "__main__": {"cli"},
    "__init__": set(),
}

# third-party library -> the only modules that may import it
OWNERS: dict[str, set[str]] = {
    "requests": {"fetch", "websub"},
    "bs4": {"extract"},
    "feedgen": {"publish"},
    "apscheduler": {"daemon"},
    "sqlite3": {"store"},
    "psycopg": {"store"},
    "tomlkit": {"configfile"},
    "htmldate": {"extract"},
    "trafilatura": {"extract"},
}


def imports_of(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "feedsvc":
                names += [f"feedsvc.{a.name}" for a in node.names]
            else:
                names.append(node.module)
        # relative imports (`from .dates import …`) stay inside their own package: always allowed
    return names


MODULES = sorted(p for p in PACKAGE.rglob("*.py"))


def layer_of(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0].removesuffix(".py")


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_dependencies_point_one_way(path: Path) -> None:
    layer = layer_of(path)
    assert layer in LAYERS, f"{path.name}: a new module needs a place in LAYERS"
    for name in imports_of(path):
        parts = name.split(".")
        if parts[0] == "feedsvc" and len(parts) > 1:
            target = parts[1]
            if target in ("__version__", "PROJECT_URL"):
                continue
            assert target == layer or target in LAYERS[layer], f"{layer} must not import feedsvc.{target}"
        elif parts[0] in OWNERS:
            assert layer in OWNERS[parts[0]], f"{parts[0]} belongs to {OWNERS[parts[0]]}, not {layer}"
