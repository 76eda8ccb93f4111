"""Duplicates: each indexed image's perceptual evidence (hashes of its thumbnail and crop grid, a
colour signature), the pairs the rules found, the pairs a person said are not duplicates, and the
library images hidden because a person kept another copy (their files are never touched)."""
from django.db import models

from embeddings.models.images import Image


class ImageHash(models.Model):
    """The evidence of one image (embeddings.duplicates.hashing), made from its thumbnail when it
    is indexed. Re-made rows are deleted and created anew, so that an id past a process's
    watermark says "new or changed" (embeddings.duplicates.store's in-memory matrix)."""

    image = models.OneToOneField(Image, on_delete=models.CASCADE, related_name="duplicate_hash")
    full = models.BigIntegerField()  # the whole picture's 64-bit hash, signed
    grid = models.BinaryField()  # the crop grid's 16 hashes, 8 bytes each, big-endian
    colour = models.BinaryField()  # the 4x4 RGB signature, 48 bytes
    created_at = models.DateTimeField(auto_now_add=True)


class DuplicatePair(models.Model):
    """Two images the rules call the same picture or a series; `low` < `high` by id."""

    class Tier(models.TextChoices):
        SAME = "same"
        SIMILAR = "similar"

    low = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="+")
    high = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="+")
    tier = models.CharField(max_length=8, choices=Tier.choices)
    bits = models.PositiveSmallIntegerField()  # the pair distance (embeddings.duplicates.rules)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["low", "high"], name="one_duplicate_pair")]


class NotDuplicate(models.Model):
    """Two images a person said are not duplicates: never proposed together again."""

    low = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="+")
    high = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["low", "high"], name="one_not_duplicate_pair")]


class HiddenImage(models.Model):
    """A library image whose copy elsewhere was kept: out of every search (embeddings.search.request's
    Filters), listed for the user to delete from disk; the row survives rescans with its image."""

    image = models.OneToOneField(Image, on_delete=models.CASCADE, primary_key=True, related_name="duplicate_hidden")
    kept = models.ForeignKey(Image, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
