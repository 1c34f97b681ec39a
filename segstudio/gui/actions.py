"""The window's actions and menus (File, Edit, View, Review, Run, Help) with standard shortcuts; no behaviour here."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QMainWindow, QMenu

from segstudio.core.labels import PALETTES
from segstudio.gui.widgets.viewer import LAYOUTS

Key = QKeySequence.StandardKey
# The one-pane layout's panes, keys 1-4 (the viewer's SINGLE_PANES order).
SINGLE_PANE_NAMES = {"gt": "Ground Truth Pane", "pred": "Prediction Pane", "error": "Third Pane", "image": "Image Pane"}
# Mask editing tools: (menu text, key). Choosing one turns edit mode on.
EDIT_TOOLS = {"brush": ("&Brush", "B"), "eraser": ("Eraser (back to the &Original)", "X"),
              "fill": ("&Fill Region", "F"), "polygon": ("Po&lygon", "L"),
              "adopt": ("&Adopt Prediction (Brush)", "A"), "adopt_region": ("Adopt Prediction in Error &Region", "R")}


@dataclass
class Actions:
    open_dataset: QAction
    open_dataset_folder: QAction
    open_dataset_options: QAction
    corrections_folder: QAction
    open_model: QAction
    open_model_folder: QAction
    recent_menu: QMenu
    export: QAction
    quit: QAction
    fit: QAction
    actual_size: QAction
    zoom_in: QAction
    zoom_out: QAction
    layers: dict[str, QAction]
    next_image: QAction
    previous_image: QAction
    clear_selection: QAction
    evaluate: QAction
    cancel: QAction
    train: QAction
    cancel_training: QAction
    fine_tune_corrected: QAction
    compare: QAction
    review: dict[str, QAction]  # accept, flag, fixed, unreviewed, next_unreviewed, note
    about: QAction
    shortcuts: QAction
    layouts: dict[str, QAction]
    panes: dict[str, QAction]
    undo: QAction
    redo: QAction
    edit_mode: QAction
    edit_tools: dict[str, QAction]
    bigger_brush: QAction
    smaller_brush: QAction
    set_ignore: QAction
    palettes: dict[str, QAction]


def _action(window: QMainWindow, text: str, *shortcuts, tip: str = "") -> QAction:
    action = QAction(text, window)
    keys: list[QKeySequence] = []
    for key in (QKeySequence(s) for s in shortcuts):
        # Some platforms lack a standard key; where a standard key equals the explicit one (Quit is Ctrl+Q on
        # Linux), two equal shortcuts on one action make Qt refuse both as ambiguous.
        if not key.isEmpty() and key not in keys:
            keys.append(key)
    if keys:
        action.setShortcuts(keys)
    if tip:
        action.setStatusTip(tip)
    window.addAction(action)  # shortcuts work whichever dock has the focus
    return action


def build_actions(window: QMainWindow) -> Actions:
    """Create the actions and put them in the menu bar; the window connects their ``triggered``."""
    layers = {}
    for key, text, shortcut in (("image", "Show &Image", "I"), ("gt", "Show &Ground Truth", "G"),
                                ("pred", "Show &Prediction", "P"), ("error", "Show &Error Map", "E")):
        layers[key] = _action(window, text, shortcut)
        layers[key].setCheckable(True)
        layers[key].setChecked(True)
    actions = Actions(
        open_dataset=_action(window, "&Open Dataset…", Key.Open, tip="demo, a folder or a Hub dataset id"),
        open_dataset_folder=_action(window, "Open Dataset &Folder…"),
        open_dataset_options=_action(window, "Open Dataset with O&ptions…", "Ctrl+Alt+O",
                                     tip="Hub configuration, revision, columns, label convention, label map"),
        corrections_folder=_action(window, "&Corrections Folder…",
                                   tip="where corrected masks are kept; the dataset is read with them"),
        open_model=_action(window, "Open &Model…", "Ctrl+Shift+O", tip="demo, a checkpoint folder or a Hub id"),
        open_model_folder=_action(window, "Open Model Folder…"),
        recent_menu=QMenu("Open &Recent", window),
        export=_action(window, "&Export…", "Ctrl+E", tip="predicted masks and metrics"),
        quit=_action(window, "&Quit", Key.Quit, "Ctrl+Q"),
        fit=_action(window, "&Fit", "Ctrl+0"),
        actual_size=_action(window, "&Actual Size (1:1)", "Ctrl+1"),
        zoom_in=_action(window, "Zoom &In", Key.ZoomIn, "Ctrl+="),
        zoom_out=_action(window, "Zoom &Out", Key.ZoomOut),
        layers=layers,
        next_image=_action(window, "&Next Image", "Right", "PgDown"),
        previous_image=_action(window, "&Previous Image", "Left", "PgUp"),
        clear_selection=_action(window, "Show &All Classes", "Ctrl+Shift+A"),
        evaluate=_action(window, "&Evaluate Split", "F5", tip="predict and score the current split"),
        cancel=_action(window, "&Cancel Evaluation", "Esc"),
        train=_action(window, "&Training…", "Ctrl+T", tip="the training settings, then Start"),
        cancel_training=_action(window, "Cancel T&raining"),
        fine_tune_corrected=_action(window, "&Fine-tune on Corrected Data",
                                    tip="train the open model on the corrected masks, then compare it with the new one"),
        compare=_action(window, "Com&pare with Checkpoint…", tip="score the split with a second checkpoint (B)"),
        review=_review_actions(window),
        about=_action(window, "&About SegStudio"),
        shortcuts=_action(window, "&Keyboard Shortcuts", Key.HelpContents),
        layouts={key: _action(window, text) for key, text in LAYOUTS.items()},
        panes={key: _action(window, f"Show {text}", str(number))
               for number, (key, text) in enumerate(SINGLE_PANE_NAMES.items(), start=1)},
        undo=_action(window, "&Undo", Key.Undo),
        redo=_action(window, "&Redo", Key.Redo, "Ctrl+Shift+Z"),
        edit_mode=_action(window, "&Edit Mask", "M", tip="paint the ground truth: brush, fill, polygon, adopt"),
        edit_tools={key: _action(window, text, shortcut) for key, (text, shortcut) in EDIT_TOOLS.items()},
        bigger_brush=_action(window, "Bigger Brush", "]"),
        smaller_brush=_action(window, "Smaller Brush", "["),
        set_ignore=_action(window, "Paint &Ignore", "0", tip="the tools paint the dataset's ignore value"),
        palettes={key: _action(window, text) for key, text in PALETTES.items()},
    )
    actions.edit_mode.setCheckable(True)
    tools = QActionGroup(window)
    for action in actions.edit_tools.values():
        action.setCheckable(True)
        action.setActionGroup(tools)
    actions.edit_tools["brush"].setChecked(True)
    actions.palettes["ade20k"].setStatusTip("Class colours as ADE20K's tools show them")
    actions.palettes["contrast"].setStatusTip("The shown image's classes in colours far apart (the legend follows)")
    palette_group = QActionGroup(window)
    for action in actions.palettes.values():
        action.setCheckable(True)
        action.setActionGroup(palette_group)
    group = QActionGroup(window)
    for key, action in actions.layouts.items():
        action.setCheckable(True)
        action.setActionGroup(group)
        action.setStatusTip(f"Viewer layout: {LAYOUTS[key].lower()}")
    bar = window.menuBar()
    file_menu = bar.addMenu("&File")
    for item in (actions.open_dataset, actions.open_dataset_folder, actions.open_dataset_options,
                 actions.corrections_folder, actions.open_model, actions.open_model_folder):
        file_menu.addAction(item)
    file_menu.addMenu(actions.recent_menu)
    file_menu.addSeparator()
    file_menu.addAction(actions.export)
    file_menu.addSeparator()
    file_menu.addAction(actions.quit)
    edit = bar.addMenu("&Edit")
    for item in (actions.undo, actions.redo):
        edit.addAction(item)
    edit.addSeparator()
    edit.addAction(actions.edit_mode)
    for item in actions.edit_tools.values():
        edit.addAction(item)
    edit.addSeparator()
    for item in (actions.bigger_brush, actions.smaller_brush, actions.set_ignore):
        edit.addAction(item)
    view = bar.addMenu("&View")
    for item in (actions.fit, actions.actual_size, actions.zoom_in, actions.zoom_out):
        view.addAction(item)
    layout_menu = view.addMenu("&Layout")
    for item in actions.layouts.values():
        layout_menu.addAction(item)
    layout_menu.addSeparator()
    for item in actions.panes.values():
        layout_menu.addAction(item)
    palette_menu = view.addMenu("Pa&lette")
    for item in actions.palettes.values():
        palette_menu.addAction(item)
    view.addSeparator()
    for item in layers.values():
        view.addAction(item)
    view.addAction(actions.clear_selection)
    view.addSeparator()
    view.addAction(actions.next_image)
    view.addAction(actions.previous_image)
    view.addSeparator()
    window.docks_menu = view.addMenu("&Panels")
    review = bar.addMenu("Re&view")
    for key, item in actions.review.items():
        review.addAction(item)
        if key in ("unreviewed", "next_unreviewed"):
            review.addSeparator()
    run = bar.addMenu("&Run")
    for item in (actions.evaluate, actions.cancel, actions.train, actions.cancel_training,
                 actions.fine_tune_corrected):
        run.addAction(item)
    run.addSeparator()
    run.addAction(actions.compare)
    help_menu = bar.addMenu("&Help")
    help_menu.addAction(actions.shortcuts)
    help_menu.addAction(actions.about)
    return actions


def _review_actions(window: QMainWindow) -> dict[str, QAction]:
    """The review record's keyboard flow: set the shown image's status, go to the next unreviewed one (letters the
    mask editor's tools do not use: two actions on one key would both be refused as ambiguous)."""
    return {
        "accept": _action(window, "&Accept", "Y", tip="the mask is right: mark it accepted, then the next unreviewed"),
        "flag": _action(window, "&Flag: Needs Fix", "W", tip="the mask is wrong: mark it as needing a fix, then the next "
                        "unreviewed"),
        "fixed": _action(window, "Mark Fi&xed", "D", tip="the mask has been corrected"),
        "unreviewed": _action(window, "Mark &Unreviewed", "U"),
        # not Space: a window shortcut on it would take the key from a focused button or check box
        "next_unreviewed": _action(window, "&Next Unreviewed", "N"),
        "note": _action(window, "&Tags and Note…", "T", tip="tags and a note for the shown image"),
    }
