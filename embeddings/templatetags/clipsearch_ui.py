"""Small template filters for the browser pages: how an image is named and when it was taken."""
from datetime import UTC
from pathlib import PurePosixPath

from django import template

from embeddings.files.photo_facts import parse_offset

register = template.Library()


@register.filter
def display_name(image) -> str:
    """The user's file name, or a library file's own name."""
    return image.original_filename or PurePosixPath(image.path or "").name or f"image #{image.pk}"


@register.filter
def taken(image) -> str:
    """When a photo was taken, on the clock of where it was taken.

    EXIF gives a wall-clock time and, sometimes, its offset; without one the wall clock is stored
    as if it were UTC (embeddings.files.photo_facts), so it is shown as stored, with no zone claimed."""
    when = image.taken_at
    if when is None:
        return ""
    offset, tz = parse_offset(image.taken_offset)
    if tz is None:
        return f"{when.astimezone(UTC):%Y-%m-%d %H:%M}"
    return f"{when.astimezone(tz):%Y-%m-%d %H:%M} ({offset})"
