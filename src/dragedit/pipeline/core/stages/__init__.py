"""The session's stages in order: align, invert (PTI), drag, composite. Each fills the session through
`Session.cached`, so unchanged inputs and settings reuse what is committed; `edit.py` runs them."""
