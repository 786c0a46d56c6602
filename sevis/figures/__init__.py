"""Figures and words: plot helpers, shared figures, the sentences every view writes, export, handouts."""
