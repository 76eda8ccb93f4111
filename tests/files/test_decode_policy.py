"""The upload policy holds on EVERY path that decodes user bytes: an EPS, a PSD and an SVG named
.png are refused by the admin upload, the upload API, search by image (API and browser), image
encoding and index_folder, with a clear reason, no Image row and no file stored, and without any
of Pillow's parsers ever being entered (a spy wraps each parser's `_open`)."""
import io
import struct
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.test import Client
from PIL import EpsImagePlugin, ImageFile, PsdImagePlugin
from PIL import Image as PILImage

from embeddings.models import ApiToken, Image

pytestmark = pytest.mark.django_db

REFUSAL = "not a supported image"  # embeddings.files.image_policy.sniff_format's message


# ---- the hostile files ---------------------------------------------------------------------------
def minimal_eps() -> bytes:
    return (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n%%EndComments\n"
            b"newpath 0 0 moveto 10 10 lineto stroke\nshowpage\n%%EOF\n")


def minimal_psd() -> bytes:
    """A valid 1x1 RGB PSD: header, empty colour-mode / resources / layer sections, raw pixels."""
    header = b"8BPS" + struct.pack(">H6sHIIHH", 1, b"\0" * 6, 3, 1, 1, 8, 3)  # v1, 3 channels, 1x1, 8 bit, RGB
    sections = struct.pack(">III", 0, 0, 0)
    return header + sections + struct.pack(">H", 0) + bytes([200, 10, 30])  # raw, one byte per channel plane


def svg_in_png() -> bytes:
    return (b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
            b'<script>alert(1)</script><rect width="10" height="10" fill="red"/></svg>\n')


FILES = {
    "eps": ("drawing.eps", minimal_eps(), EpsImagePlugin.EpsImageFile),
    "psd": ("layers.psd", minimal_psd(), PsdImagePlugin.PsdImageFile),
    "svg-in-png": ("x.png", svg_in_png(), None),  # Pillow has no SVG parser: refusal only
}


def _parser_classes():
    """Every Pillow image-file class that defines its own parser, registered or not."""
    PILImage.init()  # imports every plugin
    found, todo = set(), [ImageFile.ImageFile]
    while todo:
        for sub in todo.pop().__subclasses__():
            todo.append(sub)
            if "_open" in vars(sub):
                found.add(sub)
    return found


@pytest.fixture
def parser_spy(monkeypatch):
    """Every Pillow parser's `_open`, wrapped: records the format it was entered for, then parses."""
    entered = []
    for cls in _parser_classes():
        original = cls._open

        def spy(self, _original=original, _format=cls.format):
            entered.append(_format)
            return _original(self)

        monkeypatch.setattr(cls, "_open", spy)
    return entered


def test_the_spy_sees_pillow_parse_the_hostile_files_when_unrestricted(parser_spy):
    """The files are real EPS/PSD that Pillow would parse: a refusal later comes from the policy."""
    for key in ("eps", "psd"):
        name, data, cls = FILES[key]
        parser_spy.clear()
        with PILImage.open(io.BytesIO(data)) as im:
            assert isinstance(im, cls) and im.format == cls.format and im.size[0] > 0
            if key == "psd":
                im.load()
                assert im.getpixel((0, 0)) == (200, 10, 30)
        assert cls.format in parser_spy, (key, parser_spy)
    with pytest.raises(PILImage.UnidentifiedImageError):
        PILImage.open(io.BytesIO(FILES["svg-in-png"][1]))


@pytest.mark.parametrize("kind", ["eps", "psd"])
def test_the_spy_would_catch_a_path_that_skips_the_allowlist(kind, parser_spy, monkeypatch):
    """With the allowlist switched off, the encode path hands the bytes to Pillow's parser and the
    spy sees it: an empty spy in the tests below means the parser was not entered."""
    from embeddings.files import image_policy

    name, data, cls = FILES[kind]
    monkeypatch.setattr(image_policy, "sniff_format", lambda _data: cls.format)
    Client(raise_request_exception=False).post("/api/encode/image", {"file": _upload(name, data)})
    assert cls.format in parser_spy, parser_spy


# ---- the paths ---------------------------------------------------------------------------------
def _upload(name, data):
    return SimpleUploadedFile(name, data, content_type="image/png")  # the client lies about the type


@pytest.fixture
def staff_user():
    return get_user_model().objects.create_user("staff", is_staff=True, is_superuser=True)  # no password: fast


def via_admin(name, data, staff_user, tmp_path):
    client = Client()
    client.force_login(staff_user)
    resp = client.post("/admin/embeddings/image/add/", {"files": [_upload(name, data)]}, follow=True)
    assert resp.status_code == 200, resp.content[:500]
    shown = [str(m) for m in resp.context["messages"]]
    assert len(shown) == 1 and shown[0].startswith(f"{name}: rejected: {REFUSAL}"), shown
    assert f"{name}: rejected: {REFUSAL}" in resp.content.decode().lower()  # rendered (capitalised) on the page


def via_upload_api(name, data, staff_user, tmp_path):
    _, key = ApiToken.issue(staff_user)
    resp = Client().post("/api/images", {"files": [_upload(name, data)]}, HTTP_AUTHORIZATION=f"Bearer {key}")
    assert resp.status_code == 400, (resp.status_code, resp.content[:500])
    error = resp.json()["error"]
    assert error["code"] == "rejected" and f"{name}: {REFUSAL}" in error["message"], error


def _api_query(path, **extra):
    def run(name, data, staff_user, tmp_path):
        resp = Client().post(path, {"file": _upload(name, data), **extra})
        assert resp.status_code == 400, (resp.status_code, resp.content[:500])
        error = resp.json()["error"]
        assert REFUSAL in error["message"] and "readable image" in error["message"], error

    return run


def _browser_search(**extra):
    def run(name, data, staff_user, tmp_path):
        resp = Client(enforce_csrf_checks=False).post("/", {"image": _upload(name, data), **extra})
        assert resp.status_code == 400, (resp.status_code, resp.content[:500])
        text = resp.content.decode()
        assert "not a readable image" in text and REFUSAL in text, text[:3000]

    return run


def via_index_folder(name, data, staff_user, tmp_path):
    folder = tmp_path / "import"
    folder.mkdir()
    (folder / name).write_bytes(data)
    out, err = io.StringIO(), io.StringIO()
    call_command("index_folder", str(folder), stdout=out, stderr=err)
    assert "added 0, skipped 0 duplicates and 1 unreadable files" in out.getvalue(), out.getvalue()
    assert f"skipped {folder / name}: {REFUSAL}" in err.getvalue(), err.getvalue()


PATHS = {
    "admin-upload": via_admin,
    "upload-api": via_upload_api,
    "search-by-image-api": _api_query("/api/search/image"),
    "search-by-image-and-text-api": _api_query("/api/search/image", q="a red circle"),
    "encode-image-api": _api_query("/api/encode/image"),
    "browser-search-by-image": _browser_search(),
    "browser-search-by-image-and-text": _browser_search(q="a red circle"),
    "index-folder": via_index_folder,
}


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("kind", FILES)
def test_hostile_file_is_refused_before_any_parser(kind, path, parser_spy, redis, staff_user, tmp_path, settings):
    name, data, _ = FILES[kind]
    PATHS[path](name, data, staff_user, tmp_path)
    assert parser_spy == [], f"Pillow parser entered on {path} for {kind}: {parser_spy}"
    assert Image.objects.count() == 0
    media = Path(settings.MEDIA_ROOT)
    assert not media.exists() or not [p for p in media.rglob("*") if p.is_file()]
