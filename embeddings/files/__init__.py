"""What comes from users' bytes and folders: the one decode policy (image_policy), formats by their
bytes (formats), photo facts from EXIF (photo_facts), and library originals read where they lie
(originals). May import: clip (decoding), models."""
