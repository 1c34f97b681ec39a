"""Wiring between panels, workers and the core (what is open, what runs, what the views show); no
widgets of their own."""

__all__ = ["classify", "compare", "export", "results", "review", "sources", "training"]
