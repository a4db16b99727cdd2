"""`dragedit batch`: `run.py` spreads photos over local worker processes or Ray tasks and keeps the summary;
`photo.py` is what a worker does with one photo; `ray.py` the Ray backend. No torch at import time."""
