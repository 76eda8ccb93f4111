"""The app's tables, one module per idea (Django finds them through this package): images and what
hangs off them (images), albums and shares (albums), duplicates (duplicates)."""
from embeddings.models.albums import Album, AlbumImage, Share
from embeddings.models.duplicates import DuplicatePair, HiddenImage, ImageHash, NotDuplicate
from embeddings.models.images import ApiToken, Embedding, Image, Library, Tombstone

__all__ = ["Album", "AlbumImage", "ApiToken", "DuplicatePair", "Embedding", "HiddenImage", "Image", "ImageHash", "Library",
           "NotDuplicate", "Share", "Tombstone"]
