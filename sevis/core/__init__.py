"""The SE block itself: the layer, its gates and formula, the recorder that reads s, streaming statistics."""
