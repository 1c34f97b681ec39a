"""The Qt layer: the main window, its widgets, dialogs, controllers and background workers."""
