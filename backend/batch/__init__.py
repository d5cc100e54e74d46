"""Batch restyling of asset libraries: a manifest of jobs, run one after another or as Ray tasks."""
