"""Uploaded images (product photos, live-session covers): checked, then a clean copy stored.

The upload is opened with Pillow's JPEG, PNG and WebP readers only (the declared type and name
are not trusted), limited in bytes and, from its header before any pixel is decoded, in pixels;
a PNG or WebP with data after the image's end (an HTML trailer) is refused. What is stored is
always a re-encoded JPEG of at most MAX_SIDE pixels a side, so no metadata (EXIF, GPS) and no
trailing bytes survive, under a random name.

Decoding is the costly part: a 115 KB PNG of 6300 x 6300 took 5.7 s of CPU and 310 MB. So the
pixel limits follow what the 1600-pixel output needs: JPEGs are decoded at a reduced scale
(`draft`: 1/2 to 1/8 inside libjpeg), PNG and WebP have no such shortcut and get a lower
limit. At most MAX_PHOTO_DECODES images are decoded at once per process, in a real thread
under gevent; a further upload waits briefly, then is told to try again (429).
"""

from __future__ import annotations

import struct
import threading
import uuid
from io import BytesIO
from pathlib import Path
from typing import IO

from flask import current_app
from PIL import Image, ImageOps, UnidentifiedImageError

from shop.concurrency import off_event_loop
from shop.errors import DomainError
from shop.i18n import N_

ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP")
MAX_SIDE = 1600
# JPEG decodes through `draft` at the smallest scale still >= MAX_SIDE: 24 MP (6000 x 4000, a
# camera's full size) decodes as at most ~6 MP. PNG and WebP decode in full: 12 MP (~48 MB).
MAX_PIXELS = {"JPEG": 24_000_000, "PNG": 12_000_000, "WEBP": 12_000_000}
DECODES_PER_PROCESS = 2  # MAX_PHOTO_DECODES overrides
DECODE_WAIT_SECONDS = 5.0
DAMAGED = N_("The image is damaged and cannot be read.")


class BadPhoto(DomainError):
    status, code, message = 422, "bad_photo", N_("The file is not a usable photo.")

    def __init__(self, message: str) -> None:
        super().__init__(message, fields={"photo": [message]})


class PhotoTooLarge(BadPhoto):
    status, code = 413, "too_large"


class PhotosBusy(DomainError):
    """Every decoding slot of this process is taken: ask the client to come back shortly."""

    status, code, retry_after = 429, "too_many_requests", 2
    message = N_("Too many photos are being processed; try again in a moment.")


def read_upload(stream: IO[bytes] | None) -> bytes:
    """The uploaded bytes, refused when missing, empty or over MAX_PHOTO_BYTES."""
    if stream is None:
        raise BadPhoto(N_("Choose a photo to upload."))
    limit = current_app.config["MAX_PHOTO_BYTES"]
    data = stream.read(limit + 1)
    if not data:
        raise BadPhoto(N_("The file is empty."))
    if len(data) > limit:
        raise PhotoTooLarge(f"The photo is larger than {limit // 1024} KB.")
    return data


def clean_image(data: bytes) -> Image.Image:
    """Decode the bytes as a JPEG, PNG or WebP image: upright, RGB, at most MAX_SIDE a side."""
    slots = _decode_slots()
    if not slots.acquire(timeout=DECODE_WAIT_SECONDS):
        raise PhotosBusy()
    try:
        return off_event_loop(_decode, data)
    finally:
        slots.release()


def _decode(data: bytes) -> Image.Image:
    try:
        image = Image.open(BytesIO(data), formats=ALLOWED_FORMATS)
    except Image.DecompressionBombError:
        raise BadPhoto(N_("The photo has too many pixels.")) from None
    except UnidentifiedImageError:
        raise BadPhoto(_not_allowed(data)) from None
    except (OSError, SyntaxError, ValueError, EOFError, struct.error):
        raise BadPhoto(DAMAGED) from None
    width, height = image.size
    if width * height > MAX_PIXELS[image.format or ""]:
        raise BadPhoto(N_("The photo has too many pixels."))
    if _has_trailer(data, image.format or ""):
        raise BadPhoto(N_("The file has data after the end of the image."))
    try:
        image.draft("RGB", _draft_size(image.size))  # JPEG only; a no-op for PNG and WebP
        image.load()
        image = _flattened(ImageOps.exif_transpose(image))
    except (OSError, SyntaxError, ValueError, EOFError, struct.error):
        raise BadPhoto(DAMAGED) from None
    image.thumbnail((MAX_SIDE, MAX_SIDE))
    return image


def _flattened(image: Image.Image) -> Image.Image:
    """RGB, with any transparency laid on white (JPEG has no alpha)."""
    if image.mode in ("RGBA", "LA", "P", "PA"):
        image = image.convert("RGBA")
        background = Image.new("RGB", image.size, "white")
        background.paste(image, mask=image.getchannel("A"))
        return background
    return image.convert("RGB")


def _not_allowed(data: bytes) -> str:
    """Why the file is refused: another image format (named from its header), or none."""
    try:
        with Image.open(BytesIO(data)) as other:  # header only: nothing else is decoded
            kind = other.format
    except Exception:  # not an image Pillow knows at all
        return N_("The file is not a JPEG, PNG or WebP image.")
    return f"Only JPEG, PNG or WebP photos are accepted (this is {kind})."


def _draft_size(size: tuple[int, int]) -> tuple[int, int]:
    """The output's size at this aspect ratio: `draft` keeps at least this many pixels."""
    width, height = size
    scale = min(1.0, MAX_SIDE / max(width, height, 1))
    return max(1, int(width * scale)), max(1, int(height * scale))


def _has_trailer(data: bytes, kind: str) -> bool:
    """True when bytes follow the image's end: PNG after IEND, WebP past its RIFF size.

    JPEGs are not checked: phones append data after the image on purpose (motion photos,
    multi-picture files); re-encoding drops it, as it drops any trailer.
    """
    if kind == "PNG":
        return _png_end(data) < len(data)
    if kind == "WEBP" and len(data) >= 12:
        riff_size = struct.unpack_from("<I", data, 4)[0]
        return 8 + riff_size + (riff_size & 1) < len(data)
    return False


def _png_end(data: bytes) -> int:
    """The offset just past the IEND chunk (the whole length when there is none)."""
    offset = 8
    while offset + 8 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, offset)
        offset += 12 + length
        if kind == b"IEND":
            return offset
    return len(data)


_slots_lock = threading.Lock()
_slots: dict[int, threading.BoundedSemaphore] = {}


def _decode_slots() -> threading.BoundedSemaphore:
    """This process's decoding slots, made on first use (after gevent patched `threading`)."""
    size = int(current_app.config.get("MAX_PHOTO_DECODES") or DECODES_PER_PROCESS)
    with _slots_lock:
        return _slots.setdefault(size, threading.BoundedSemaphore(size))


def save_image(image: Image.Image, prefix: str) -> str:
    """Write the image as a metadata-free JPEG under UPLOAD_FOLDER; return its file name."""
    folder = Path(current_app.config["UPLOAD_FOLDER"])
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{prefix}-{uuid.uuid4().hex[:16]}.jpg"
    image.save(folder / name, "JPEG", quality=85, optimize=True)
    return name


def store_upload(stream: IO[bytes] | None, prefix: str) -> str:
    """Check and store an uploaded photo; the file name it was saved under."""
    return save_image(clean_image(read_upload(stream)), prefix)


def remove(name: str | None) -> None:
    """Delete a stored photo that nothing refers to any more; a missing file is fine."""
    if name and "/" not in name and "\\" not in name:
        (Path(current_app.config["UPLOAD_FOLDER"]) / name).unlink(missing_ok=True)
