"""Authoring: one source (solutions/), two outputs (solutions with outputs, student notebooks)."""
