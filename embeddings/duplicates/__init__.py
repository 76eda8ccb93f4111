"""Duplicates: which images show the same picture (a copy re-encoded, resized, cropped a little,
recoloured, screenshotted) and which are a series (the same scene moments apart).

So far this package holds the evidence and the rules, pure: `hashing` (a perceptual hash of a
thumbnail and of its crop grid, a colour signature) and `rules` (when two images are the same
picture, how groups are formed). It imports numpy and Pillow only; the groups' storage, the
review page, the API and the worker's hook are not built yet (docs/DUPLICATES.md says what is
measured and what is left)."""
