"""A shop with planted indexing problems (see models.py)."""
