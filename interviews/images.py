"""The optional presentation image of a case: checked as carefully as an incident attachment, then
re-encoded so that nothing but the pixels reaches the candidate.

An uploaded image passes `incidents.services.validate_upload` (size limit, extension, no executable or
active content, content type by `filetype` matching the extension), must be a PNG, JPEG or WebP, must
decode with Pillow within a pixel limit, and is saved re-encoded: EXIF (camera, GPS, author), PNG text
chunks and comments are dropped, so a hidden fact typed into an image's metadata never reaches the
candidate.
"""

from __future__ import annotations

import io

from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.http import FileResponse, Http404
from PIL import Image, UnidentifiedImageError

from incidents.services import validate_upload

from .models import CaseVersion

FORMATS = {"image/png": "PNG", "image/jpeg": "JPEG", "image/webp": "WEBP"}
MAX_PIXELS = 25_000_000  # 5000 x 5000: larger is no presentation image, and may be a decompression bomb


def clean_image(upload: UploadedFile) -> tuple[bytes, str]:
    """The re-encoded bytes of an acceptable image and their content type; ValidationError naming `image`."""
    try:
        _, mime = validate_upload(upload)
    except ValidationError as error:
        raise ValidationError({"image": error.message_dict.get("file", error.messages)}) from error
    if mime not in FORMATS:
        raise ValidationError({"image": [f"A PNG, JPEG or WebP image, not {mime}."]})
    upload.seek(0)
    try:
        with Image.open(upload) as probe:
            width, height = probe.size
            if width * height > MAX_PIXELS:
                raise ValidationError({"image": [f"The image is too large ({width} x {height} pixels)."]})
            if FORMATS[mime] != probe.format:
                raise ValidationError({"image": [f"The content is {probe.format}, not {mime}."]})
            probe.load()
            pixels = probe.copy()
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as error:
        raise ValidationError({"image": ["The image cannot be read."]}) from error
    finally:
        upload.seek(0)
    return _reencode(pixels, FORMATS[mime]), mime


def _reencode(image: Image.Image, fmt: str) -> bytes:
    """Only the pixels: a new image without `info` (EXIF, text chunks, ICC profile, comments)."""
    if image.mode == "P":
        image = image.convert("RGBA")
    if fmt == "JPEG" and image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    bare = Image.frombytes(image.mode, image.size, image.tobytes())
    out = io.BytesIO()
    bare.save(out, format=fmt, **({"quality": 90} if fmt in ("JPEG", "WEBP") else {}))
    return out.getvalue()


def image_response(version: CaseVersion) -> FileResponse:
    """The version's image for an <img>: its checked type, no sniffing, no script, never cached shared.

    The caller decides who is entitled; a version without an image is a 404.
    """
    if not version.image:
        raise Http404("No image.")
    response = FileResponse(version.image.open("rb"), content_type=version.image_type)
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "private, no-store"
    response["Content-Disposition"] = "inline"
    return response
