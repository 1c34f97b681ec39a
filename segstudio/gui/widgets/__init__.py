"""The window's widgets: viewer panes and layers, image list and grid, class and confusion tables, legend, inspector,
and the dataset, model and training panels."""

__all__ = ["advanced_training", "class_table", "confusions", "dataset_panel", "guard_banner", "image_grid", "image_list", "inspector", "label_issues_view", "layers", "legend", "model_panel", "on_screen", "pane", "qimages", "table_base", "training_panel", "viewer"]
