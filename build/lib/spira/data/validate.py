"""What can be wrong with an input row or file, and the per-file check run in the workers.

Every problem has a machine-readable reason (the report's `reason` column) and
a human message. A quarantined row is left out of the prepared data and listed
in the quarantine report; a warning keeps the row and is listed beside it.
"""

from __future__ import annotations

import os
import posixpath
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from pathlib import Path

import numpy as np
import soundfile as sf

from spira.data.audio import DEFAULT_BLOCK_FRAMES, decode_audio, peak_normalize_in_place, write_float_wav
from spira.safety import byte_size

# reason -> what it means (the README's table is this dict).
QUARANTINE_REASONS = {
    "malformed_row": "the row has another number of fields than the header, or no file path",
    "missing_label": "the label cell is empty (or NA, null, none)",
    "unknown_label": "the label is not one of data.labels.patient / data.labels.control",
    "unknown_split": "the split cell is not one of data.split.names (split.strategy: given)",
    "path_outside_root": "absolute path, a path with ../ leaving the root, or a symlink pointing out of it",
    "duplicate_row": "the same file listed again (all copies dropped when their labels or speakers differ)",
    "conflicting_speaker_label": "the speaker has both patient and control recordings",
    "missing_file": "no file at that path",
    "not_a_file": "a folder, named pipe (FIFO), device or socket where an audio file was expected",
    "unreadable_file": "the file exists but cannot be read (permission denied, or an I/O error)",
    "empty_file": "the file has zero bytes",
    "not_audio": "not an audio file (no known audio signature), whatever its extension",
    "corrupt_audio": "truncated or corrupt audio: the decoder failed or the file holds less than its header declares",
    "unsupported_sample_rate": "sample rate outside data.validation.min_sample_rate..max_sample_rate",
    "non_finite_samples": "NaN or infinite samples",
    "silent_audio": "peak amplitude at or below data.validation.silence_peak",
    "too_short": "shorter than data.validation.min_seconds",
    "duplicate_content": "the same decoded audio as another file (content hash) in the same split",
    "content_leak": "the same decoded audio as a file in another split (data.split.on_leak: drop)",
    "speaker_leak": "the speaker also has files in an earlier split (data.split.on_leak: drop)",
}
WARNING_REASONS = {
    "clipping": "more than data.validation.max_clipped_fraction of the samples at full scale",
    "missing_speaker_id": "no speaker id: the file counts as its own speaker",
}

# Leading bytes of the containers soundfile decodes: a file starting with none of
# them is not audio; one that does but fails to decode is corrupt.
AUDIO_SIGNATURES = (b"RIFF", b"RIFX", b"RF64", b"fLaC", b"OggS", b"ID3", b"FORM", b".snd", b"caff", b"wvpk")
AUDIO_EXTENSIONS = frozenset({".wav", ".flac", ".ogg", ".oga", ".mp3", ".aif", ".aiff", ".au", ".caf"})
_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:/")


def resolve_inside(root: Path, raw_path: str) -> tuple[str, str | None]:
    """(normalised path relative to `root`, None) or (shown path, why it escapes the root).

    Backslashes count as separators (Windows exports). The path shown for an
    absolute path is its file name only, so reports never hold a location
    outside the dataset.
    """
    text = raw_path.strip().replace("\\", "/")
    if text.startswith("/") or _WINDOWS_DRIVE.match(text):
        return f"<outside data.root>/{posixpath.basename(text)}", "absolute path (paths must be relative to data.root)"
    relative = posixpath.normpath(text)
    if relative == ".." or relative.startswith("../"):
        return relative, "the path leaves data.root through '..'"
    real_root = os.path.realpath(root)
    real = os.path.realpath(root / relative)
    if real != real_root and not real.startswith(real_root + os.sep):
        return relative, "a symlink on the path points outside data.root"
    return relative, None


@dataclass(frozen=True)
class FileCheck:
    """Per-file validation settings (data.validation plus the target rate)."""

    target_rate: int
    min_seconds: float
    silence_peak: float
    clip_level: float
    max_clipped_fraction: float
    min_sample_rate: int
    max_sample_rate: int
    block_frames: int = DEFAULT_BLOCK_FRAMES


def file_check(sample_rate: int, validation: Mapping[str, Any], block_frames: int = DEFAULT_BLOCK_FRAMES) -> FileCheck:
    """The check of `data.validation` (prepare) or of an export's accepted input
    (`model.json` → `input`, which holds the same keys), resampling to `sample_rate`."""
    return FileCheck(
        target_rate=int(sample_rate),
        min_seconds=float(validation["min_seconds"]),
        silence_peak=float(validation["silence_peak"]),
        clip_level=float(validation["clip_level"]),
        max_clipped_fraction=float(validation["max_clipped_fraction"]),
        min_sample_rate=int(validation["min_sample_rate"]),
        max_sample_rate=int(validation["max_sample_rate"]),
        block_frames=int(block_frames),
    )


@dataclass(frozen=True)
class FileTask:
    source: str  # the file to check
    destination: str  # where its prepared 16 kHz WAV goes when it passes
    shown_path: str  # the path as the report shows it (relative to the root)


@dataclass(frozen=True)
class FileResult:
    reason: str | None = None
    message: str = ""
    n_samples: int = 0
    source_rate: int = 0
    channels: int = 0
    source_format: str = ""  # the container as soundfile names it: WAV, FLAC, OGG, MP3, AIFF, RF64, ...
    content_hash: str = ""
    clipped_fraction: float = 0.0


def _riff_shortfall(handle, size: int, rf64: bool) -> tuple[int, int] | None:
    """(declared, present) data bytes of a RIFF or RF64 WAVE file; None when the data chunk is whole."""
    offset, data_size64 = 12, None
    while offset + 8 <= size:
        handle.seek(offset)
        chunk = handle.read(8)
        chunk_size = int.from_bytes(chunk[4:8], "little")
        if chunk[:4] == b"ds64" and rf64:
            # RF64 keeps the real sizes (64 bits) here and 0xFFFFFFFF in the chunk headers.
            data_size64 = int.from_bytes(handle.read(16)[8:16], "little")
        if chunk[:4] == b"data":
            present = size - offset - 8
            declared = data_size64 if rf64 and chunk_size == 0xFFFFFFFF and data_size64 is not None else chunk_size
            # 0 and 0xFFFFFFFF in a RIFF file mark streamed WAVs whose writer never knew the size.
            if (rf64 or declared not in (0, 0xFFFFFFFF)) and declared > present:
                return declared, present
            return None
        offset += 8 + chunk_size + (chunk_size & 1)
    return None


def _aiff_shortfall(handle, size: int) -> tuple[int, int] | None:
    """(declared, present) sample bytes of an AIFF file whose COMM frame count exceeds its SSND chunk."""
    offset, declared = 12, None
    while offset + 8 <= size:
        handle.seek(offset)
        chunk = handle.read(8)
        chunk_size = int.from_bytes(chunk[4:8], "big")
        if chunk[:4] == b"COMM":
            comm = handle.read(8)
            channels, frames, bits = int.from_bytes(comm[0:2], "big"), int.from_bytes(comm[2:6], "big"), int.from_bytes(comm[6:8], "big")
            declared = frames * channels * ((bits + 7) // 8)
        if chunk[:4] == b"SSND" and declared is not None:
            present = size - offset - 16  # the SSND chunk's offset and block size fields come first
            return (declared, present) if declared > present else None
        offset += 8 + chunk_size + (chunk_size & 1)
    return None


def header_data_shortfall(path: str) -> tuple[int, int] | None:
    """(declared, present) sample bytes of a WAV, RF64 or AIFF file whose header claims more than it holds.

    libsndfile silently decodes such a file up to where it ends (and reports the
    shortened length), so an interrupted upload would otherwise pass as a
    shorter recording, and a header claiming terabytes as a plausible one.
    """
    with open(path, "rb") as handle:
        head = handle.read(12)
        size = os.fstat(handle.fileno()).st_size
        if len(head) == 12 and head[:4] in (b"RIFF", b"RF64") and head[8:12] == b"WAVE":
            return _riff_shortfall(handle, size, rf64=head[:4] == b"RF64")
        if len(head) == 12 and head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
            return _aiff_shortfall(handle, size)
    return None


def not_a_regular_file(mode: int) -> str | None:
    """What a path is when it is not a regular file (opening a FIFO would block, a device never ends)."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a socket" if stat.S_ISSOCK(mode) else "not a regular file"


def looks_like_audio(path: str) -> bool:
    with open(path, "rb") as handle:
        head = handle.read(4)
    is_mpeg_frame = len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0
    return head.startswith(AUDIO_SIGNATURES) or is_mpeg_frame


def _decoder_message(error: Exception, path: str) -> str:
    """The decoder's complaint without the absolute path it quotes."""
    text = getattr(error, "error_string", None) or str(error)
    return text.replace(f"'{path}'", "the file").replace(path, "the file").strip()


def check_and_prepare_file(task: FileTask, check: FileCheck) -> FileResult:
    """Validate one file; when it passes, write its peak-normalised 16 kHz mono WAV.

    Never raises for a bad file: every problem comes back as a FileResult
    reason, so one broken upload cannot stop a run of thousands.
    """
    result, samples = decode_and_check(task.source, task.shown_path, check)
    if samples is not None:
        write_float_wav(task.destination, samples, check.target_rate)
    return result


def decode_and_check(source: str, shown_path: str, check: FileCheck) -> tuple[FileResult, np.ndarray | None]:
    """Validate and decode one file: (result, peak-normalised mono samples at the
    target rate), or (result with its reason, None) for a bad file.

    The one definition of an acceptable recording and of its samples, shared by
    prepare and by prediction on new recordings. Messages name the file as
    `shown_path`.
    """
    try:
        status = os.stat(source)  # stat, not open: opening a FIFO blocks until someone writes to it
    except FileNotFoundError:
        return FileResult("missing_file", f"{shown_path}: no such file"), None
    except OSError as error:
        return FileResult("unreadable_file", f"{shown_path}: cannot be read ({error.strerror})"), None
    kind = not_a_regular_file(status.st_mode)
    if kind:
        return FileResult("not_a_file", f"{shown_path}: {kind}, not an audio file"), None
    if status.st_size == 0:
        return FileResult("empty_file", f"{shown_path}: the file is empty (0 bytes)"), None
    try:
        with open(source, "rb") as handle:
            handle.read(1)
    except OSError as error:
        return FileResult("unreadable_file", f"{shown_path}: cannot be read ({error.strerror})"), None
    try:
        info = sf.info(source)
    except Exception as error:  # libsndfile raises several types for unreadable input
        if not looks_like_audio(source):
            return FileResult("not_audio", f"{shown_path}: not an audio file ({_decoder_message(error, source)})"), None
        return FileResult("corrupt_audio", f"{shown_path}: cannot be opened ({_decoder_message(error, source)})"), None
    if not check.min_sample_rate <= info.samplerate <= check.max_sample_rate:
        return FileResult(
            "unsupported_sample_rate",
            f"{shown_path}: {info.samplerate} Hz, outside {check.min_sample_rate}-{check.max_sample_rate} Hz",
        ), None
    shortfall = header_data_shortfall(source)
    if shortfall:
        declared, present = shortfall
        return FileResult(
            "corrupt_audio",
            f"{shown_path}: truncated {info.format} (header declares {declared} data bytes ({byte_size(declared)}), file holds {present})",
        ), None
    try:
        decoded = decode_audio(source, check.target_rate, check.clip_level, check.block_frames)
    except Exception as error:
        return FileResult("corrupt_audio", f"{shown_path}: decoding failed ({_decoder_message(error, source)})"), None
    described = {"source_rate": decoded.source_rate, "channels": decoded.channels, "source_format": info.format}
    if not decoded.all_finite:
        return FileResult("non_finite_samples", f"{shown_path}: contains NaN or infinite samples", **described), None
    # MP3 headers only estimate the length, so only other formats are held to it.
    if info.format != "MP3" and decoded.source_frames < decoded.declared_frames:
        return FileResult(
            "corrupt_audio",
            f"{shown_path}: truncated (header declares {decoded.declared_frames} frames, decoded {decoded.source_frames})",
            **described,
        ), None
    seconds = decoded.source_frames / decoded.source_rate
    if seconds < check.min_seconds:
        return FileResult("too_short", f"{shown_path}: {seconds:.3f} s, shorter than {check.min_seconds} s", **described), None
    if decoded.peak <= check.silence_peak:
        return FileResult("silent_audio", f"{shown_path}: silent (peak {decoded.peak:.2e} <= {check.silence_peak:.0e})", **described), None
    samples = peak_normalize_in_place(decoded.samples)
    result = FileResult(
        None,
        "",
        n_samples=int(samples.shape[0]),
        content_hash=decoded.content_hash,
        clipped_fraction=decoded.clipped_fraction,
        **described,
    )
    return result, samples
