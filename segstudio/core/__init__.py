"""The Qt-free core, one package per stage: labels, data, model, inference, metrics, evaluation, training, export,
review. Each package's ``__init__`` names its public objects; they load on first use."""
