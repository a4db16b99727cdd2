"""The ground floor: file and image IO that every dragedit package may import.

Atomic writes, content hashes, safetensors metadata, generator-image conversions and image files, and
the `UserError` that the CLI reports as one line. It imports nothing of dragedit's own, so the model
packages (`stylegan2`, `inversion`, `draggan`) use it without depending on the application (`pipeline`).
"""
