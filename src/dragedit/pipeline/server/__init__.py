"""`dragedit serve`: the FastAPI application (`app.py`), its job runner (`jobs.py`) and the no-build page (`web/`)."""
