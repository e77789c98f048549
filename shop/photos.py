"""Product photos: check an upload really is an image, then store a clean re-encoded copy.

The upload is opened with Pillow (the declared type and name are not trusted), limited in bytes
and pixels, stripped of metadata by re-encoding to JPEG, and saved under a random name.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import IO

from flask import current_app
from PIL import Image, ImageOps, UnidentifiedImageError

from shop.errors import DomainError
from shop.i18n import N_

ALLOWED_FORMATS = {"JPEG", "PNG", "WEBP"}
MAX_PIXELS = 40_000_000
MAX_SIDE = 1600


class BadPhoto(DomainError):
    status, code, message = 422, "bad_photo", N_("The file is not a usable photo.")

    def __init__(self, message: str) -> None:
        super().__init__(message, fields={"photo": [message]})


class PhotoTooLarge(BadPhoto):
    status, code = 413, "too_large"


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
    """Open and fully decode the bytes as a JPEG, PNG or WebP image, upright and in RGB."""
    from io import BytesIO

    try:
        with Image.open(BytesIO(data)) as probe:
            kind = probe.format
            width, height = probe.size
            probe.verify()
        if kind not in ALLOWED_FORMATS:
            raise BadPhoto(f"Only JPEG, PNG or WebP photos are accepted (this is {kind}).")
        if width * height > MAX_PIXELS:
            raise BadPhoto(N_("The photo has too many pixels."))
        image = Image.open(BytesIO(data))
        image.load()
        image = ImageOps.exif_transpose(image)
    except BadPhoto:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError):
        raise BadPhoto(N_("The file is not a JPEG, PNG or WebP image.")) from None
    except (OSError, SyntaxError, ValueError):
        raise BadPhoto(N_("The image is damaged and cannot be read.")) from None
    if image.mode in ("RGBA", "LA", "P"):
        image = image.convert("RGBA")
        background = Image.new("RGB", image.size, "white")
        background.paste(image, mask=image.getchannel("A"))
        image = background
    image = image.convert("RGB")
    image.thumbnail((MAX_SIDE, MAX_SIDE))
    return image


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
