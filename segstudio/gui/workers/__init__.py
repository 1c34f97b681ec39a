"""Background work: the QThread worker, short decoding jobs, and the Qt-free job functions the workers run."""

__all__ = ["export_job", "jobs", "loaders", "train_job", "worker"]
