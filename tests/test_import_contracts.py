"""Import contracts, read from the source (every import statement, also those inside functions): the core imports
no Qt and nothing of the GUI or the CLI, and its packages form layers without cycles; the CLI imports no Qt; the
GUI imports the core only through the packages' public faces; the fast inference path imports no transformers."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "segstudio"
QT = ("PySide6", "PyQt5", "PyQt6", "shiboken6", "pytestqt")
# Each core package may import only those of lower layers (and the core's shared modules: errors, file_modes, _face).
LAYERS = (("labels",), ("metrics", "data", "model"), ("export",), ("inference",), ("evaluation",), ("review", "training"))
SHARED = ("errors", "file_modes", "_face")
FAST_PATH = ("inference/fast", "model/checkpoint_files.py", "inference/pixel_values.py")


def imports_of(path: Path, package: str | None = None, typing_only: bool = True) -> set[str]:
    """Every module an ``import`` or ``from ... import`` in the file names (relative imports resolved against
    ``package``, by default the file's own); ``typing_only=False`` leaves out ``if TYPE_CHECKING:`` blocks."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    if package is None:
        package = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1])
    skipped: set[int] = set()
    if not typing_only:
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                skipped.update(id(inner) for inner in ast.walk(node))
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def modules(*parts: str) -> list[Path]:
    folder = PACKAGE.joinpath(*parts)
    return sorted(folder.rglob("*.py")) if folder.is_dir() else []


def name_of(path: Path) -> str:
    return str(path.relative_to(PACKAGE))


def _breaks(imported: set[str], forbidden: tuple[str, ...]) -> list[str]:
    return sorted(name for name in imported if name.split(".")[0] in forbidden or name.startswith(forbidden))


@pytest.mark.parametrize("path", modules("core"), ids=name_of)
def test_the_core_imports_no_qt_no_gui_and_no_cli(path):
    imported = imports_of(path)
    assert _breaks(imported, QT) == []
    assert sorted(n for n in imported if n.startswith(("segstudio.gui", "segstudio.cli", "segstudio.api"))) == []


def _layer(package: str) -> int:
    return next(i for i, layer in enumerate(LAYERS) if package in layer)


def test_every_core_package_has_a_layer():
    packages = {p.name for p in (PACKAGE / "core").iterdir() if (p / "__init__.py").is_file()}
    assert packages == {name for layer in LAYERS for name in layer}


@pytest.mark.parametrize("path", [p for p in modules("core") if p.parent != PACKAGE / "core"], ids=name_of)
def test_core_packages_import_only_lower_layers(path):
    own = path.relative_to(PACKAGE / "core").parts[0]
    wrong = []
    for name in imports_of(path, typing_only=False):
        parts = name.split(".")
        if parts[:2] != ["segstudio", "core"] or len(parts) < 3 or parts[2] in (own, *SHARED):
            continue
        if parts[2] in {n for layer in LAYERS for n in layer} and _layer(parts[2]) >= _layer(own):
            wrong.append(name)
    assert sorted(set(wrong)) == []


@pytest.mark.parametrize("path", modules("cli") + [PACKAGE / "__main__.py"], ids=name_of)
def test_the_command_line_imports_no_qt(path):
    imported = imports_of(path)
    # The one way from the command line into the window: `segstudio` with no command opens the app.
    allowed = {"segstudio.gui.app", "segstudio.gui.app.run_app"} if path.name == "entry.py" else set()
    assert _breaks(imported, QT) == []
    assert sorted(n for n in imported if n.startswith("segstudio.gui") and n not in allowed) == []


def _faces() -> dict[str, set[str]]:
    faces = {}
    for init in sorted((PACKAGE / "core").glob("*/__init__.py")):
        face = importlib.import_module(f"segstudio.core.{init.parent.name}")
        faces[face.__name__] = set(face.__all__)
    return faces


def core_imports_outside_faces(path: Path, faces: dict[str, set[str]]) -> list[str]:
    """`from segstudio.core.X import name` with `name` in X's face is the one way in; anything else is listed."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    wrong = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            wrong += [a.name for a in node.names if a.name.startswith("segstudio.core")]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("segstudio.core"):
            public = faces.get(node.module)
            if public is None:
                wrong.append(node.module)
            else:
                wrong += [f"{node.module}.{a.name}" for a in node.names if a.name not in public]
    return wrong


@pytest.mark.parametrize("path", modules("gui"), ids=name_of)
def test_the_gui_imports_the_core_only_through_its_public_faces(path):
    assert core_imports_outside_faces(path, _faces()) == []


def test_every_name_a_face_offers_is_there():
    for package, names in _faces().items():
        face = importlib.import_module(package)
        assert names and all(getattr(face, name) is not None for name in names), package


@pytest.mark.parametrize("part", FAST_PATH)
def test_the_fast_inference_path_imports_no_transformers(part):
    paths = modules("core", *part.split("/")) or [PACKAGE / "core" / part]
    assert all(p.is_file() for p in paths)
    for path in paths:
        assert _breaks(imports_of(path), ("transformers",)) == [], name_of(path)


def test_the_contracts_can_fail(tmp_path):
    """The reader sees imports in functions and relative ones, so a contract breach cannot hide there."""
    sample = PACKAGE / "core" / "labels" / "label_map.py"
    assert any(n.startswith("numpy") for n in imports_of(sample))
    probe = tmp_path / "probe.py"
    probe.write_text(
        "def f():\n    from ..gui import viewer\n    import PySide6.QtCore\n"
        "from segstudio.core.labels.label_map import LabelMap\nfrom segstudio.core.labels import LabelMap, nothing\n"
    )
    imported = imports_of(probe, package="segstudio.core")
    assert _breaks(imported, QT) == ["PySide6.QtCore"]
    assert "segstudio.gui.viewer" in imported
    assert core_imports_outside_faces(probe, _faces()) == [
        "segstudio.core.labels.label_map", "segstudio.core.labels.nothing"
    ]


def test_the_fast_path_is_reached_only_through_the_inference_package():
    outside = [p for p in modules() if PACKAGE / "core" / "inference" not in p.parents]
    wrong = [name_of(p) for p in outside if any(n.startswith("segstudio.core.inference.fast") for n in imports_of(p))]
    assert wrong == []
