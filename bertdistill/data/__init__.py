"""Data layer: read any supported source into a canonical task data set, tokenize and batch it."""

from bertdistill.data.sources import DataSpec, TaskData, load_task_data

__all__ = ["DataSpec", "TaskData", "load_task_data"]
