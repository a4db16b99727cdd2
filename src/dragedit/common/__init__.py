"""The ground floor that every dragedit package may import, and which imports nothing of dragedit's own.

File and image IO (atomic writes, content hashes, safetensors metadata, image files), the `UserError` that the
front ends report as one line, and the process-wide plumbing the model packages share: the core-share thread
scheduler, kept freed memory, lazy imports and environment lookups. Because it depends on nothing above it, the
model packages (`stylegan2`, `inversion`, `draggan`) use it without depending on the application (`pipeline`).
"""
