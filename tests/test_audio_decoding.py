"""Round trips through real encoders and the streaming decoder: every format, rate and channel count."""

from __future__ import annotations

import math
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio.functional as AF

from spira.data.audio import StreamingResampler, decode_audio
from spira.data.validate import FileCheck, FileTask, check_and_prepare_file

TARGET = 16000
TONE_HZ = 440.0


def tone(rate: int, seconds: float, channels: int = 1) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    mono = 0.5 * np.sin(2 * np.pi * TONE_HZ * t)
    # Channels differ in level only, so the downmix is the same tone.
    return np.stack([mono * (1 - 0.1 * c) for c in range(channels)], axis=1).astype(np.float32)


def dominant_hz(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[np.argmax(spectrum)])


def reference(samples: np.ndarray, rate: int) -> np.ndarray:
    mono = samples.mean(axis=1)
    return AF.resample(torch.from_numpy(mono), rate, TARGET).numpy()


# (container, subtype, extension, lossless, max abs error vs the reference after decoding)
FORMATS = [
    ("WAV", "PCM_U8", "wav", True, 2e-2),
    ("WAV", "PCM_16", "wav", True, 1e-4),
    ("WAV", "PCM_24", "wav", True, 1e-5),
    ("WAV", "PCM_32", "wav", True, 1e-5),
    ("WAV", "FLOAT", "wav", True, 1e-5),
    ("WAV", "DOUBLE", "wav", True, 1e-5),
    ("FLAC", "PCM_16", "flac", True, 1e-4),
    ("FLAC", "PCM_24", "flac", True, 1e-5),
    ("OGG", "VORBIS", "ogg", False, None),
    ("MP3", None, "mp3", False, None),
]


@pytest.mark.parametrize("container,subtype,extension,lossless,tolerance", FORMATS, ids=[f"{f[0]}-{f[1]}" for f in FORMATS])
def test_every_format_decodes_to_the_same_16k_mono_tone(tmp_path: Path, container, subtype, extension, lossless, tolerance):
    assert container in sf.available_formats()
    rate, source = 44100, tone(44100, 1.0, channels=2)
    path = tmp_path / f"tone.{extension}"
    sf.write(path, source, rate, format=container, subtype=subtype)
    decoded = decode_audio(path, TARGET)
    assert (decoded.source_rate, decoded.channels) == (rate, 2)
    assert decoded.all_finite
    assert abs(dominant_hz(decoded.samples, TARGET) - TONE_HZ) < 5
    if lossless:
        expected = reference(source, rate)
        assert decoded.samples.shape == expected.shape == (math.ceil(len(source) * TARGET / rate),)
        assert np.abs(decoded.samples - expected).max() < tolerance
    else:
        # Lossy codecs add encoder delay and padding: length within 0.1 s, level kept.
        assert abs(len(decoded.samples) - TARGET) < 0.1 * TARGET
        assert 0.3 < decoded.peak < 0.6


RATES = [8000, 11025, 16000, 22050, 32000, 44100, 48000, 88200, 96000]


@pytest.mark.parametrize("rate", RATES)
def test_every_sample_rate_resamples_to_16k_like_whole_file_resampling(tmp_path: Path, rate: int):
    source = tone(rate, 0.7, channels=2)
    sf.write(tmp_path / "tone.wav", source, rate, subtype="PCM_24")
    # Small blocks, so a short file still crosses many block boundaries.
    decoded = decode_audio(tmp_path / "tone.wav", TARGET, block_frames=1000)
    expected = reference(source, rate)
    assert decoded.samples.shape == expected.shape
    assert np.abs(decoded.samples - expected).max() < 1e-4
    assert abs(dominant_hz(decoded.samples, TARGET) - TONE_HZ) < 5


def test_six_channels_are_downmixed(tmp_path: Path):
    source = tone(48000, 0.5, channels=6)
    sf.write(tmp_path / "surround.wav", source, 48000, subtype="FLOAT")
    decoded = decode_audio(tmp_path / "surround.wav", TARGET)
    assert decoded.channels == 6
    assert np.abs(decoded.samples - reference(source, 48000)).max() < 1e-5


def test_content_hash_follows_the_samples_not_the_container(tmp_path: Path):
    # Integer samples, so both containers store exactly the same PCM.
    source = np.round(tone(22050, 0.5) * 32767).astype(np.int16)
    sf.write(tmp_path / "a.wav", source, 22050, subtype="PCM_16")
    sf.write(tmp_path / "b.flac", source, 22050, subtype="PCM_16")
    sf.write(tmp_path / "c.wav", source // 2, 22050, subtype="PCM_16")
    hashes = [decode_audio(tmp_path / name, TARGET).content_hash for name in ("a.wav", "b.flac", "c.wav")]
    assert hashes[0] == hashes[1] != hashes[2]


def test_streaming_resampler_matches_whole_signal_resampling_for_any_block_split():
    rng = np.random.default_rng(0)
    signal = rng.standard_normal(44100 + 77).astype(np.float32)
    expected = AF.resample(torch.from_numpy(signal), 44100, TARGET).numpy()
    resampler = StreamingResampler(44100, TARGET, step_frames=3000)
    parts = []
    for start in range(0, len(signal), 1234):
        parts += resampler.push(signal[start : start + 1234])
    streamed = np.concatenate(parts + resampler.flush())
    assert streamed.shape == expected.shape
    # Float32 summation order differs between the chunked and the whole convolution.
    assert np.abs(streamed - expected).max() < 5e-5


def test_long_file_decodes_with_memory_bounded_by_the_16k_output(tmp_path: Path):
    """60 s of 48 kHz stereo: decoding it whole would take 23 MB of float32."""
    rate, seconds = 48000, 60
    path = tmp_path / "long.wav"
    with sf.SoundFile(path, "w", rate, 2, subtype="PCM_16") as out:
        for _ in range(seconds // 10):
            out.write(tone(rate, 10.0, channels=2))
    whole_decode_bytes = rate * seconds * 2 * 4
    output_bytes = TARGET * seconds * 4
    tracemalloc.start()
    decoded = decode_audio(path, TARGET)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert decoded.samples.shape == (TARGET * seconds,)
    # The 16 kHz output, plus a few read blocks (0.5 MiB each) in flight.
    assert peak < output_bytes + 3 * 1024 * 1024 < whole_decode_bytes / 3


def test_a_passing_file_is_written_as_peak_normalised_16k_float_wav(tmp_path: Path):
    sf.write(tmp_path / "in.flac", tone(32000, 1.5, channels=2), 32000, subtype="PCM_16")
    check = FileCheck(TARGET, min_seconds=1.0, silence_peak=1e-4, clip_level=0.999, max_clipped_fraction=0.001,
                      min_sample_rate=8000, max_sample_rate=96000)  # fmt: skip
    result = check_and_prepare_file(FileTask(str(tmp_path / "in.flac"), str(tmp_path / "out.wav"), "in.flac"), check)
    assert result.reason is None
    samples, rate = sf.read(tmp_path / "out.wav", dtype="float32")
    info = sf.info(tmp_path / "out.wav")
    assert (rate, info.channels, info.subtype) == (TARGET, 1, "FLOAT")
    assert result.n_samples == len(samples) == TARGET * 3 // 2
    assert np.max(np.abs(samples)) == pytest.approx(1.0)
    assert (result.source_rate, result.channels) == (32000, 2)
