"""dragedit's application: photos and faces, the session core with its one edit recipe, and the front ends.

Import what you need from the rooms; `dragedit.pipeline.api` (re-exported as `dragedit`) holds the
library calls.
"""
