"""Images (Pillow) and audio (mutagen): size, duration and metadata read in the sandbox, and the hand-off
of the bytes to a host-side vision model or transcription service when the environment configured one."""

from __future__ import annotations

import base64
import mimetypes
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: Largest file handed to a host-side model (the usual API limits are 20-25 MB).
MAX_MEDIA_BYTES = 20 << 20
#: What the vision model is asked when the agent gives no question.
DEFAULT_IMAGE_QUESTION = "Describe this image in detail, and transcribe any text, numbers or symbols in it."
_MAX_VALUE_CHARS = 300


def _short(value: Any) -> str:
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8").rstrip("\0")
        except UnicodeDecodeError:
            return f"<{len(value)} bytes>"
    text = str(value)
    return text if len(text) <= _MAX_VALUE_CHARS else text[:_MAX_VALUE_CHARS] + "..."


def _mime(path: Path, default: str) -> str:
    return mimetypes.guess_type(path.name)[0] or default


def _encoded(path: Path) -> str | None:
    """The file base64-encoded for the host, or None when it is over :data:`MAX_MEDIA_BYTES`."""
    return None if path.stat().st_size > MAX_MEDIA_BYTES else base64.b64encode(path.read_bytes()).decode("ascii")


def image_metadata(path: Path) -> list[str]:
    """Format, size, colour mode, frames, text chunks and EXIF tags of an image, one ``Key: value`` a line."""
    from PIL import ExifTags, Image

    with Image.open(path) as image:
        lines = [f"Image: {path.name}", f"Format: {image.format}",
                 f"Size: {image.width} x {image.height} pixels", f"Mode: {image.mode}"]
        frames = getattr(image, "n_frames", 1)
        if frames > 1:
            lines.append(f"Frames: {frames}")
        for key, value in sorted(image.info.items()):
            if key not in ("exif", "icc_profile", "transparency") and isinstance(value, (str, int, float, bytes)):
                lines.append(f"{key}: {_short(value)}")
        for tag, value in sorted(image.getexif().items()):
            lines.append(f"EXIF {ExifTags.TAGS.get(tag, tag)}: {_short(value)}")
    return lines


def image_text(path: Path, question: str | None, vision: Callable[..., Any] | None) -> str:
    """The image's metadata, then the vision model's answer to ``question`` (or a description)."""
    lines = image_metadata(path)
    if vision is None:
        if question:
            lines.append("No vision model is configured, so the question about the image was not answered.")
        return "\n".join(lines)
    encoded = _encoded(path)
    if encoded is None:
        lines.append(f"The image is larger than {MAX_MEDIA_BYTES >> 20} MB, too large for the vision model.")
        return "\n".join(lines)
    asked = question or DEFAULT_IMAGE_QUESTION
    answer = vision(encoded, _mime(path, "image/png"), asked)
    lines += ["", f"Question to the vision model: {asked}", f"Vision model's answer: {answer}"]
    return "\n".join(lines)


def audio_metadata(path: Path) -> list[str]:
    """Duration, sample rate, channels, bit rate and tags of a recording (mutagen; WAV also via ``wave``)."""
    lines = [f"Audio: {path.name}"]
    try:
        import mutagen
    except ImportError:  # the standard library still reads WAV
        mutagen = None
    info = mutagen.File(str(path), easy=True) if mutagen is not None else None
    if info is not None and getattr(info, "info", None) is not None:
        stream = info.info
        lines.append(f"Duration: {stream.length:.2f} seconds")
        units = {"sample_rate": " Hz", "channels": "", "bitrate": " bit/s"}
        for attr, unit in units.items():
            value = getattr(stream, attr, None)
            if value:
                lines.append(f"{attr.replace('_', ' ').capitalize()}: {value}{unit}")
        tags = info.tags
        pairs = tags.items() if hasattr(tags, "items") else (tags or [])
        for key, value in sorted(pairs, key=lambda pair: str(pair[0])):
            shown = ", ".join(map(_short, value)) if isinstance(value, list) else _short(value)
            lines.append(f"Tag {key}: {shown}")
        return lines
    if path.suffix.lower() == ".wav":
        import wave

        with wave.open(str(path)) as recording:
            rate = recording.getframerate()
            lines += [f"Duration: {recording.getnframes() / rate:.2f} seconds", f"Sample rate: {rate} Hz",
                      f"Channels: {recording.getnchannels()}"]
        return lines
    raise ValueError(f"{path.name} is not an audio file inspect_file can read")


def audio_text(path: Path, transcribe: Callable[..., Any] | None) -> str:
    """The recording's metadata, then its transcript when a transcription service is configured."""
    lines = audio_metadata(path)
    if transcribe is None:
        lines.append("No transcription service is configured, so there is no transcript.")
        return "\n".join(lines)
    encoded = _encoded(path)
    if encoded is None:
        lines.append(f"The recording is larger than {MAX_MEDIA_BYTES >> 20} MB, too large to transcribe.")
        return "\n".join(lines)
    lines += ["", "Transcript:", str(transcribe(encoded, path.name))]
    return "\n".join(lines)
