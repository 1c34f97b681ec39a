"""Dialogs: messages and questions, Open Dataset with options, Export."""

__all__ = ["export", "messages", "open_dataset"]
