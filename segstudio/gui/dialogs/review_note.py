"""Tags and a note for one image's review (Review > Tags and Note…)."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QWidget,
)


class ReviewNoteDialog(QDialog):
    """Edits the tags (one line, separated by commas) and the note of ``file_name``; ``known_tags`` are offered
    as a hint so the same tag is typed the same way."""

    def __init__(self, file_name: str, tags: str, note: str, known_tags: list[str],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Tags and Note")
        self.tags = QLineEdit(tags, self)
        self.tags.setObjectName("review-tags")
        self.tags.setPlaceholderText("e.g. occluded, thin structures")
        self.note = QPlainTextEdit(note, self)
        self.note.setObjectName("review-note")
        self.note.setTabChangesFocus(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form = QFormLayout(self)
        form.addRow(QLabel(file_name, self))
        form.addRow("Tags", self.tags)
        if known_tags:
            hint = QLabel("In use: " + ", ".join(known_tags), self)
            hint.setWordWrap(True)
            form.addRow("", hint)
        form.addRow("Note", self.note)
        form.addRow(buttons)
        self.resize(460, 260)

    def values(self) -> tuple[str, str]:
        """(tags as typed, note)."""
        return self.tags.text(), self.note.toPlainText()
