"""Backups: `manage.py backup DEST` and `restore SRC` (a folder with the database rows, vectors
included, and the media files, from and to whichever storage; `archive` says what is in it)."""
