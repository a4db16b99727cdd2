"""The session core: the one edit recipe (`edit.py`), its settings and request model, the session store and
its stages. It raises typed errors (`errors.py`) that name no flag or field; the front ends word them."""
