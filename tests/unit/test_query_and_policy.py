"""Pure logic, no model and no database: query parsing and combining, the upload policy's checks
made before any decoder runs, the environment-variable table, and (on the real Redis) the lease a
worker holds while it encodes."""
import io
import time

import numpy as np
import pytest
from PIL import Image as PILImage

from clipsearch import config
from clipsearch.config import ConfigError
from embeddings.image_policy import RejectedImage, check, check_size, clean_filename, sniff_format
from embeddings.query import MAX_QUERY_CHARS, BadQuery, combine, parse_query


# ---- parse_query ------------------------------------------------------------------------------
@pytest.mark.parametrize("q, terms", [
    ("a dog on grass", [(1, "a dog on grass")]),
    ("  a dog on grass  ", [(1, "a dog on grass")]),
    ("a dog on grass - a cat + a ball", [(1, "a dog on grass"), (-1, "a cat"), (1, "a ball")]),
    ("red + blue", [(1, "red"), (1, "blue")]),
    ("a dog  -   a cat", [(1, "a dog"), (-1, "a cat")]),
    # a sign only counts between spaces: hyphens and plus signs inside words stay in the phrase
    ("t-shirt", [(1, "t-shirt")]),
    ("c++ book", [(1, "c++ book")]),
    ("a dog -a cat", [(1, "a dog -a cat")]),
    ("a dog\t-\na cat", [(1, "a dog"), (-1, "a cat")]),  # any whitespace around the sign
])
def test_parse_query_phrases_and_signs(q, terms):
    assert parse_query(q) == terms


@pytest.mark.parametrize("q", ["", "   ", "\n\t", None])
def test_parse_query_refuses_empty(q):
    with pytest.raises(BadQuery, match="empty"):
        parse_query(q)


@pytest.mark.parametrize("q", ["- a cat", " - a cat - a dog"])
def test_parse_query_refuses_only_negative_phrases(q):
    with pytest.raises(BadQuery, match="at least one phrase"):
        parse_query(q)


def test_parse_query_cuts_long_text():
    q = "x" * (MAX_QUERY_CHARS + 500)
    [(sign, text)] = parse_query(q)
    assert sign == 1 and text == "x" * MAX_QUERY_CHARS
    # what follows the cut is never seen, signs included
    assert parse_query("y" * (MAX_QUERY_CHARS - 2) + " - a cat") == [(1, "y" * (MAX_QUERY_CHARS - 2) + " -")]
    assert parse_query("y" * (MAX_QUERY_CHARS - 8) + " - a cat") == [(1, "y" * (MAX_QUERY_CHARS - 8)), (-1, "a cat")]


# ---- combine ----------------------------------------------------------------------------------
def _unit(*xs):
    v = np.asarray(xs, dtype=np.float32)
    return v / np.linalg.norm(v)


def test_combine_is_the_normalised_signed_sum():
    a, b, c = _unit(1, 0, 0), _unit(0, 1, 0), _unit(0, 0, 1)
    v = combine([(1, a), (1, b), (-1, c)])
    assert v.dtype == np.float32
    assert np.isclose(np.linalg.norm(v), 1.0, atol=1e-6)
    assert np.allclose(v, _unit(1, 1, -1), atol=1e-6)
    assert np.allclose(combine([(1, a)]), a)


def test_combine_refuses_phrases_that_cancel():
    a = _unit(0.3, -0.2, 0.9)
    with pytest.raises(BadQuery, match="cancel"):
        combine([(1, a), (-1, a)])
    with pytest.raises(BadQuery, match="cancel"):
        combine([(1, a), (1, -a)])


# ---- sniff_format: the allowlist by magic number ---------------------------------------------
def _encoded(fmt, mode="RGB", **kw):
    buf = io.BytesIO()
    PILImage.new(mode, (4, 3), "red").save(buf, fmt, **kw)
    return buf.getvalue()


@pytest.mark.parametrize("fmt, expected, kw", [
    ("JPEG", "JPEG", {}),
    ("PNG", "PNG", {}),
    ("GIF", "GIF", {}),
    ("WEBP", "WEBP", {}),
    ("BMP", "BMP", {}),
    ("TIFF", "TIFF", {}),  # little-endian: II*\0
])
def test_sniff_format_recognises_each_allowed_format(fmt, expected, kw):
    assert sniff_format(_encoded(fmt, **kw)) == expected


@pytest.mark.parametrize("magic, expected", [
    (b"\xff\xd8\xff\xe0", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"RIFF\x10\x00\x00\x00WEBPVP8 ", "WEBP"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),  # big-endian TIFF
])
def test_sniff_format_magic_numbers(magic, expected):
    assert sniff_format(magic + b"\x00" * 32) == expected


HOSTILE = {
    "eps": b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n",
    "eps-binary-header": b"\xc5\xd0\xd3\xc6" + b"\x00" * 28,  # DOS EPS binary header
    "psd": b"8BPS\x00\x01" + b"\x00" * 32,
    "pdf": b"%PDF-1.7\n1 0 obj\n<< >>\nendobj\n",
    "svg": b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>',
    "svg-xml": b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>',
    "svg-bom-space": b"\xef\xbb\xbf  <svg/>",
    "html": b"<!doctype html><script>alert(1)</script>",
    "ico": b"\x00\x00\x01\x00\x01\x00\x10\x10\x00\x00\x01\x00\x20\x00" + b"\x00" * 32,
    "cur": b"\x00\x00\x02\x00\x01\x00" + b"\x00" * 32,
    "tga-like": b"\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x01\x00\x18\x00" + b"\xff\x00\x00",
    "riff-wave": b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 24,
    "riff-avi": b"RIFF\x24\x00\x00\x00AVI LIST" + b"\x00" * 24,
    "riff-short": b"RIFF",
    "text": b"just some text\n",
    "jpeg-magic-late": b" \xff\xd8\xff\xe0" + b"\x00" * 16,  # the magic must be at byte 0
    "jp2": b"\x00\x00\x00\x0cjP  \r\n\x87\n" + b"\x00" * 16,
    "qoi": b"qoif\x00\x00\x00\x01\x00\x00\x00\x01\x03\x00",
}


@pytest.mark.parametrize("name", HOSTILE)
def test_sniff_format_refuses_everything_else(name):
    with pytest.raises(RejectedImage, match="not a supported image"):
        sniff_format(HOSTILE[name])


def test_sniff_format_refuses_real_files_of_other_formats():
    for fmt, mode in (("ICO", "RGBA"), ("TGA", "RGB"), ("PCX", "RGB"), ("PPM", "RGB"), ("EPS", "RGB")):
        try:
            data = _encoded(fmt, mode)
        except (OSError, KeyError):  # EPS needs Ghostscript to write
            continue
        with pytest.raises(RejectedImage):
            sniff_format(data)


# ---- check: empty and size ----------------------------------------------------------------------
def test_check_refuses_empty():
    with pytest.raises(RejectedImage, match="empty"):
        check(b"")


def test_check_returns_the_sniffed_format():
    assert check(_encoded("PNG")) == "PNG"


def test_check_refuses_over_the_size_limit(settings):
    png = _encoded("PNG")
    settings.MAX_UPLOAD_BYTES = len(png)
    assert check(png) == "PNG"  # exactly at the limit: taken
    settings.MAX_UPLOAD_BYTES = len(png) - 1
    with pytest.raises(RejectedImage, match="larger than"):
        check(png)
    # the size is checked before the format: a big file of any kind is refused for its size
    with pytest.raises(RejectedImage, match="larger than"):
        check(HOSTILE["eps"] + b"%" * len(png))


def test_check_size_alone(settings):
    settings.MAX_UPLOAD_BYTES = 3 * 1024 * 1024
    check_size(3 * 1024 * 1024)
    with pytest.raises(RejectedImage, match="larger than 3 MB"):
        check_size(3 * 1024 * 1024 + 1)


# ---- clean_filename ---------------------------------------------------------------------------
@pytest.mark.parametrize("raw, clean", [
    ("photo.jpg", "photo.jpg"),
    ("/etc/passwd", "passwd"),
    ("../../secret.png", "secret.png"),
    ("a/b/c/d.gif", "d.gif"),
    ("C:\\Users\\me\\Pictures\\cat.jpg", "cat.jpg"),
    ("..\\..\\evil.png", "evil.png"),
    ("bad\x00name\x07.jpg", "badname.jpg"),
    ("line\nbreak\r\ttab.png", "linebreaktab.png"),
    ("ré sumé ☃.png", "ré sumé ☃.png"),
    ("\u202eevil.gpj.png", "evil.gpj.png"),  # right-to-left override is not printable
    ("", "unnamed"),
    (None, "unnamed"),
    ("dir/", "unnamed"),
    ("\x00\x01", "unnamed"),
])
def test_clean_filename(raw, clean):
    assert clean_filename(raw) == clean


def test_clean_filename_cuts_at_255():
    assert clean_filename("a" * 1000 + ".jpg") == "a" * 255
    assert clean_filename("dir/" + "b" * 255) == "b" * 255


# ---- the environment-variable table -----------------------------------------------------------
def test_config_defaults_when_unset_or_blank():
    values = config.load({})
    assert set(values) == {v.name for v in config.VARS}
    assert values == config.load({name: "  " for name in values})
    assert values["CLIPSEARCH_PORT"] == 8000 and values["CLIPSEARCH_PUBLIC"] is True
    assert values["CLIPSEARCH_MAX_UPLOAD_MB"] == 50


def test_config_parses_good_values():
    values = config.load({
        "CLIPSEARCH_MAX_UPLOAD_MB": "7",
        "CLIPSEARCH_PUBLIC": "No",
        "CLIPSEARCH_HTTPS": " on ",
        "CLIPSEARCH_PORT": "8080",
        "CLIPSEARCH_SEARCH_RATE": "0",
        "DJANGO_ALLOWED_HOSTS": "a.example, b.example,,",
        "CLIP_DEVICE": "CPU",
        "CLIP_LOG_LEVEL": "debug",
        "CLIP_GPU_MEMORY_THRESHOLD": "0.5",
        "UNRELATED": "ignored",
    })
    assert values["CLIPSEARCH_MAX_UPLOAD_MB"] == 7
    assert values["CLIPSEARCH_PUBLIC"] is False
    assert values["CLIPSEARCH_HTTPS"] is True
    assert values["CLIPSEARCH_PORT"] == 8080
    assert values["CLIPSEARCH_SEARCH_RATE"] == 0
    assert values["DJANGO_ALLOWED_HOSTS"] == ["a.example", "b.example"]
    assert values["CLIP_DEVICE"] == "cpu"
    assert values["CLIP_LOG_LEVEL"] == "DEBUG"
    assert values["CLIP_GPU_MEMORY_THRESHOLD"] == 0.5
    assert "UNRELATED" not in values


@pytest.mark.parametrize("name, raw", [
    ("CLIPSEARCH_MAX_UPLOAD_MB", "0"),
    ("CLIPSEARCH_MAX_UPLOAD_MB", "ten"),
    ("CLIPSEARCH_PUBLIC", "maybe"),
    ("CLIPSEARCH_PORT", "x"),
    ("CLIPSEARCH_PORT", "0"),
    ("CLIPSEARCH_PORT", "80.5"),
    ("CLIPSEARCH_CLAIM_LEASE", "1"),
    ("CLIPSEARCH_SEARCH_RATE", "-1"),
    ("CLIP_DEVICE", "tpu"),
    ("CLIP_GPU_MEMORY_THRESHOLD", "nan"),
    ("CLIP_GPU_MEMORY_THRESHOLD", "inf"),
    ("CLIP_LOG_LEVEL", "loud"),
])
def test_config_bad_value_names_the_variable(name, raw):
    with pytest.raises(ConfigError) as exc:
        config.load({name: raw})
    assert name in str(exc.value)
    assert repr(raw) in str(exc.value)


# ---- the worker's lease, on the real Redis ------------------------------------------------------
def _lease(redis):
    from embeddings.ingest import Lease, _lease_key

    lease = Lease(redis)
    return lease, _lease_key(lease.token)


def test_lease_key_lives_while_held_and_is_deleted_on_exit(redis, settings):
    settings.CLAIM_LEASE_SECONDS = 2
    lease, key = _lease(redis)
    assert not redis.exists(key)
    with lease as held:
        assert held is lease and lease.token in key
        assert redis.exists(key)
        assert 0 < redis.ttl(key) <= 2
    assert not redis.exists(key)
    lease._thread.join(2)
    assert not lease._thread.is_alive()  # the heartbeat stopped with the lease


@pytest.mark.slow
def test_lease_is_kept_by_the_heartbeat_and_expires_without_it(redis, settings):
    settings.CLAIM_LEASE_SECONDS = 2
    lease, key = _lease(redis)
    lease.__enter__()
    try:
        time.sleep(2.5)  # past the lease time: only the heartbeat keeps the key
        assert redis.exists(key)
        # the holder dies: the heartbeat stops, nobody deletes the key
        lease._stop.set()
        lease._thread.join(2)
        assert not lease._thread.is_alive()
        assert redis.exists(key)
        time.sleep(2.5)
        assert not redis.exists(key)
    finally:
        lease._stop.set()
