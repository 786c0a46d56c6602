"""Serving a class: operator settings, byte-bounded caches, uploaded weights files."""
