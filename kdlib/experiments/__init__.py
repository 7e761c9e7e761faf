"""Experiment builders used by the notebooks (data + teacher + student -> a grid-ready task)."""
