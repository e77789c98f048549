"""Product photos and live-session covers share one pipeline: re-encoded, no metadata (GPS), no
trailing HTML, a pixel limit checked before decoding, and a bound on decodes at once."""

from __future__ import annotations

import io
import re
import time
from pathlib import Path

import pytest
from PIL import Image

from shop import photos
from tests.shop.conftest import image_bytes

HTML = b"<html><script>alert(document.cookie)</script></html>"
GPS_IFD = 0x8825


def huge_png() -> bytes:
    """6300 x 6300 in 1-bit: small to make and send; a full decode is what must not happen."""
    buffer = io.BytesIO()
    Image.new("1", (6300, 6300)).save(buffer, "PNG")
    return buffer.getvalue()


def jpeg_with_gps() -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[GPS_IFD] = {1: "N", 2: (41.0, 20.0, 7.0), 3: "E", 4: (86.0, 9.0, 30.0)}
    buffer = io.BytesIO()
    Image.new("RGB", (320, 240), (90, 140, 60)).save(buffer, "JPEG", exif=exif)
    return buffer.getvalue()


class Uploads:
    """Send one file as a product photo (API) or as a session's cover (host page)."""

    def __init__(self, app, factory, login_as) -> None:
        self.app = app
        coop_id = factory.cooperative()
        self.member = login_as(factory.user("coop", cooperative_id=coop_id))
        self.product_id = factory.product(coop_id)["id"]
        self.host = login_as(factory.user("host")).client

    def photo(self, data: bytes, filename: str = "photo.png"):
        return self.member.request(
            "POST",
            f"/products/{self.product_id}/photo",
            data={"photo": (io.BytesIO(data), filename)},
            content_type="multipart/form-data",
        )

    def cover(self, data: bytes, filename: str = "cover.png"):
        token = self.host.get("/api/v1/auth/csrf").get_json()["csrf_token"]
        form = {"csrf_token": token, "title": "尉犁羊肉专场", "cover": (io.BytesIO(data), filename)}
        return self.host.post("/host/live/new", data=form, content_type="multipart/form-data")

    def stored(self) -> list[Path]:
        folder = Path(self.app.config["UPLOAD_FOLDER"])
        return sorted(folder.iterdir()) if folder.exists() else []


@pytest.fixture
def uploads(app, factory, login_as) -> Uploads:
    return Uploads(app, factory, login_as)


def test_a_6300_square_png_is_refused_before_decoding(uploads) -> None:
    data = huge_png()

    started = time.process_time()
    photo = uploads.photo(data)
    cover = uploads.cover(data)
    spent = time.process_time() - started

    assert photo.status_code == 422
    assert photo.get_json()["error"]["fields"]["photo"] == ["The photo has too many pixels."]
    assert cover.status_code == 422 and "cover" in cover.get_data(as_text=True)
    assert spent < 1.0, f"{spent:.2f} s of CPU: the image was decoded"
    assert uploads.stored() == []


def test_a_400_megapixel_header_is_refused_not_a_crash(uploads) -> None:
    buffer = io.BytesIO()
    Image.new("1", (20_000, 20_000)).save(buffer, "PNG")

    for response in (uploads.photo(buffer.getvalue()), uploads.cover(buffer.getvalue())):
        assert response.status_code == 422

    assert uploads.stored() == []


def test_gps_and_other_exif_are_gone_from_photos_and_covers(uploads) -> None:
    assert uploads.photo(jpeg_with_gps(), "photo.jpg").status_code == 200
    assert uploads.cover(jpeg_with_gps(), "cover.jpg").status_code == 302

    stored = uploads.stored()
    assert [p.name.split("-")[0] for p in stored] == ["cover", "product"]
    for path in stored:
        with Image.open(path) as image:
            assert image.format == "JPEG" and image.size == (320, 240)
            assert "exif" not in image.info and not image.getexif()
        assert b"PhoneMaker" not in path.read_bytes()


def test_a_png_with_an_html_trailer_is_refused(uploads) -> None:
    data = image_bytes("PNG", size=(40, 30)) + HTML

    photo = uploads.photo(data)
    cover = uploads.cover(data)

    assert photo.status_code == 422
    message = photo.get_json()["error"]["message"]
    assert message == "The file has data after the end of the image."
    assert cover.status_code == 422
    assert uploads.stored() == []


def test_a_jpeg_with_an_html_trailer_is_stored_without_it(uploads) -> None:
    data = image_bytes("JPEG", size=(40, 30)) + HTML

    assert uploads.photo(data, "photo.jpg").status_code == 200
    assert uploads.cover(data, "cover.jpg").status_code == 302

    for path in uploads.stored():
        assert b"<html>" not in path.read_bytes() and path.suffix == ".jpg"


def test_covers_take_the_photo_rules_gif_included(uploads) -> None:
    gif = image_bytes("GIF")

    response = uploads.cover(gif, "cover.gif")

    assert response.status_code == 422
    errors = re.findall(r'<p class="error">(.*?)</p>', response.get_data(as_text=True))
    assert len(errors) == 1 and "GIF" in errors[0]  # "only JPEG, PNG or WebP (this is GIF)"
    assert uploads.stored() == []


def test_a_large_jpeg_is_decoded_at_a_reduced_scale(app, monkeypatch) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (6000, 4000), (200, 120, 40)).save(buffer, "JPEG", quality=50)
    decoded: list[tuple[int, int]] = []
    upright = photos.ImageOps.exif_transpose
    monkeypatch.setattr(
        photos.ImageOps, "exif_transpose", lambda im: decoded.append(im.size) or upright(im)
    )

    with app.app_context():
        image = photos.clean_image(buffer.getvalue())

    assert decoded == [(3000, 2000)]  # libjpeg at 1/2: the smallest scale still >= 1600 wide
    assert image.size == (1600, 1067)


def test_uploads_beyond_the_decoding_slots_are_told_to_retry(uploads, monkeypatch) -> None:
    monkeypatch.setattr(photos, "DECODE_WAIT_SECONDS", 0.05)
    with uploads.app.app_context():
        slots = photos._decode_slots()
        taken = [slots.acquire(timeout=1) for _ in range(photos.DECODES_PER_PROCESS)]
    try:
        response = uploads.photo(image_bytes("PNG"))
    finally:
        for _ in taken:
            slots.release()

    assert all(taken)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "2"
    assert response.get_json()["error"]["code"] == "too_many_requests"
    assert uploads.photo(image_bytes("PNG")).status_code == 200
