"""Duplicates: which images show the same picture (a copy re-encoded, resized, cropped a little,
recoloured, screenshotted) and which are a series (the same scene moments apart), and what a
person decides about them.

`hashing` and `rules` are the evidence and the rules, `pairs` the candidates and decisions (all
pure: numpy, Pillow, faiss); `store` keeps the evidence and pairs in the database (the worker's
per-image check, the full pass) and `review` forms the groups and carries out "keep this one" and
"not duplicates". It reads images and writes through embeddings.services (deletes) and
embeddings.albums (the kept image's memberships); the pipeline's hook calls it. Rules, figures and
their measurements: docs/DUPLICATES.md."""
