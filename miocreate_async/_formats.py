"""The service's media rules: accepted formats, recognised by name and by first bytes, and size.

Pure functions shared by the client's pre-flight checks and the emulator's validation.
"""

from __future__ import annotations

import enum

__all__ = [
    "ACCEPTED_EXTENSIONS",
    "MAX_UPLOAD_BYTES",
    "MediaType",
    "SNIFF_BYTES",
    "is_video_name",
    "media_type_of_name",
    "sniff",
]

#: "Only supported files: Max 500 MB" (code 704).
MAX_UPLOAD_BYTES = 500 * 1024 * 1024
#: How many leading bytes ``sniff`` needs.
SNIFF_BYTES = 16


class MediaType(str, enum.Enum):
    """A format the service accepts, as recognised from a file's name and first bytes."""

    JPEG = "jpeg"
    PNG = "png"
    WEBP = "webp"
    GIF = "gif"
    MP4 = "mp4"  # also M4V and MOV: one ISO base media container family
    WEBM = "webm"

    @property
    def is_video(self) -> bool:
        return self in (MediaType.MP4, MediaType.WEBM)

    @property
    def extension(self) -> str:
        return _PREFERRED_EXTENSION[self]

    @property
    def content_type(self) -> str:
        return _CONTENT_TYPE[self]


_BY_EXTENSION = {
    "jpg": MediaType.JPEG,
    "jpeg": MediaType.JPEG,
    "png": MediaType.PNG,
    "webp": MediaType.WEBP,
    "gif": MediaType.GIF,
    "mp4": MediaType.MP4,
    "m4v": MediaType.MP4,
    "mov": MediaType.MP4,
    "webm": MediaType.WEBM,
}
ACCEPTED_EXTENSIONS = frozenset(_BY_EXTENSION)
_PREFERRED_EXTENSION = {
    MediaType.JPEG: "jpg",
    MediaType.PNG: "png",
    MediaType.WEBP: "webp",
    MediaType.GIF: "gif",
    MediaType.MP4: "mp4",
    MediaType.WEBM: "webm",
}
_CONTENT_TYPE = {
    MediaType.JPEG: "image/jpeg",
    MediaType.PNG: "image/png",
    MediaType.WEBP: "image/webp",
    MediaType.GIF: "image/gif",
    MediaType.MP4: "video/mp4",
    MediaType.WEBM: "video/webm",
}


def media_type_of_name(file_name: str) -> MediaType | None:
    """The accepted format a file name claims, or None."""
    _, dot, extension = file_name.rpartition(".")
    return _BY_EXTENSION.get(extension.lower()) if dot else None


def is_video_name(file_name: str) -> bool | None:
    """Whether a file name (or key) claims a video (True), an image (False), or neither (None):
    the one rule by which an input is told an image or a video before its bytes are seen."""
    media = media_type_of_name(file_name)
    return None if media is None else media.is_video


#: ISO base media files that are not video: audio (M4A, audiobooks, Flash audio), still images
#: (HEIF/HEIC, AVIF), JPEG 2000 and camera raws share the ``ftyp`` box with MP4 and MOV.
_NOT_VIDEO_BRANDS = frozenset(
    {
        b"M4A ", b"M4B ", b"M4P ", b"F4A ", b"F4B ",
        b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1", b"MiHE",
        b"avif", b"avis", b"avio", b"jp2 ", b"jpx ", b"jpm ", b"crx ",
    }
)  # fmt: skip


def sniff(head: bytes) -> MediaType | None:
    """The accepted format the first bytes of a file show, or None."""
    if head.startswith(b"\xff\xd8\xff"):
        return MediaType.JPEG
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return MediaType.PNG
    if head.startswith((b"GIF87a", b"GIF89a")):
        return MediaType.GIF
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return MediaType.WEBP
    if head[4:8] == b"ftyp" and head[8:12] not in _NOT_VIDEO_BRANDS:
        return MediaType.MP4
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return MediaType.WEBM
    return None
