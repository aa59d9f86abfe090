"""Metric sources and action sinks behind one small interface and a registry."""
