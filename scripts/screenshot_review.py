"""Save the README's screenshot of the review record (offscreen): statuses, filters and progress on the demo.

    QT_QPA_PLATFORM=offscreen python scripts/screenshot_review.py [--out docs/images]

The record is kept in a temporary folder (the corrections folder beside the temporary settings); the demo model
scores the split first so the list has its badges.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from screenshots import demo_window, output_folder, save, wait  # noqa: E402

# (place in the worst-first list, status, tags, note) of the images reviewed for the picture
REVIEWS = [(0, "needs_fix", ["sky"], "sky bleeds into the wall at the top left"), (1, "accepted", [], ""),
           (2, "fixed", ["thin structures"], "pole redrawn"), (3, "accepted", [], ""), (5, "needs_fix", [], "")]


def main(argv: list[str] | None = None) -> int:
    out = output_folder(__doc__, argv)

    app, window, _temp = demo_window()  # the demo split evaluated by the demo model, settings in a temporary folder
    panel = window.dataset_panel
    entries = [panel.proxy.entry_at(row) for row in range(panel.proxy.rowCount())]
    names = {entry.index: entry.file_name for entry in window.review.source.entries}
    for place, status, tags, note in REVIEWS:
        window.record.record.update("validation", names[entries[place]], status=status, tags=tags, note=note)
    window.record.load_split()
    panel.select_proxy_row(4)
    window.record.next_unreviewed()  # what N does: the first unreviewed image after the selected one
    wait(app, lambda: window.viewer.content is not None and window.viewer.content.index == panel.current_entry(),
         what="the image to review")
    save(window, out / "review-record.png")

    window.shutdown()
    window.close()
    print(f"screenshot written to {out / 'review-record.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
