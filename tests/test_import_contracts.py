"""Import contracts, read from the source (every import statement, also those inside functions): the core imports
no Qt and nothing of the GUI or the CLI; the CLI imports no Qt; the fast inference path imports no transformers."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "segstudio"
QT = ("PySide6", "PyQt5", "PyQt6", "shiboken6", "pytestqt")
FAST_PATH = ("segformer_light", "fused_encoder", "fused_head", "resample", "checkpoint_files", "pixel_values")


def imports_of(path: Path, package: str | None = None) -> set[str]:
    """Every module an ``import`` or ``from ... import`` in the file names (relative imports resolved against
    ``package``, by default the file's own)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    if package is None:
        package = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1])
    found: set[str] = set()
    for node in ast.walk(tree):
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


def _breaks(imported: set[str], forbidden: tuple[str, ...]) -> list[str]:
    return sorted(name for name in imported if name.split(".")[0] in forbidden or name.startswith(forbidden))


def cli_modules() -> list[Path]:
    return sorted(PACKAGE.glob("cli*.py")) + modules("cli") + [PACKAGE / "__main__.py"]


@pytest.mark.parametrize("path", modules("core"), ids=lambda p: p.name)
def test_the_core_imports_no_qt_no_gui_and_no_cli(path):
    imported = imports_of(path)
    assert _breaks(imported, QT) == []
    assert sorted(n for n in imported if n.startswith(("segstudio.gui", "segstudio.cli"))) == []


@pytest.mark.parametrize("path", cli_modules(), ids=lambda p: p.name)
def test_the_command_line_imports_no_qt(path):
    imported = imports_of(path)
    # The one way from the command line into the window: `segstudio` with no command opens the app.
    allowed = {"segstudio.gui.app", "segstudio.gui.app.run_app"} if path.name in ("cli.py", "__main__.py") else set()
    assert _breaks(imported, QT) == []
    assert sorted(n for n in imported if n.startswith("segstudio.gui") and n not in allowed) == []


@pytest.mark.parametrize("name", FAST_PATH)
def test_the_fast_inference_path_imports_no_transformers(name):
    (path,) = [p for p in modules("core") if p.stem == name]
    assert _breaks(imports_of(path), ("transformers",)) == []


def test_the_contracts_can_fail(tmp_path):
    """The reader sees imports in functions and relative ones, so a contract breach cannot hide there."""
    sample = PACKAGE / "core" / "labels.py"
    imported = imports_of(sample)
    assert any(n.startswith("numpy") for n in imported)
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from ..gui import viewer\n    import PySide6.QtCore\n")
    imported = imports_of(probe, package="segstudio.core")
    assert _breaks(imported, QT) == ["PySide6.QtCore"]
    assert "segstudio.gui.viewer" in imported
