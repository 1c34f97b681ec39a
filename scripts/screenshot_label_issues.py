"""Save the README's screenshot of label-error ranking (offscreen): the split ordered by suspected label errors,
the worst suspect shown with its suspected pixels in the third pane.

    QT_QPA_PLATFORM=offscreen python scripts/screenshot_label_issues.py [--out docs/images]
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from screenshots import demo_window, output_folder, save, wait  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    out = output_folder(__doc__, argv)

    app, window, _temp = demo_window()
    panel, viewer = window.dataset_panel, window.viewer
    window.docks["classes"].raise_()
    panel.order.setCurrentText("Suspected label errors first")  # as a person picks it
    panel.select_proxy_row(0)
    first = panel.proxy.entry_at(0)
    viewer.set_analysis("suspects")
    wait(app, lambda: viewer.content is not None and viewer.content.index == first, what="most suspect image")
    wait(app, lambda: viewer.suspects is not None, what="suspected pixels")
    panel.view.setFocus()
    save(window, out / "label-issues.png")
    window.shutdown()
    window.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
