"""Albums and their share links: manual albums hold the images put in them; smart albums hold a
saved search and their members are what it passes now, answered when the album is read (so no album
costs anything when an image is indexed). May import: models and the search package."""
