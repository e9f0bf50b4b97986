"""`spira serve` under bad input: a fuzz set built here (empty, truncated, corrupt and
mislabelled WAV/FLAC/MP3/OGG/AIFF, huge declared sizes, a one-hour recording, non-audio,
malformed multipart, slow and abandoned uploads) sent over raw sockets to a real server
on 127.0.0.1. Every one gets its exact 4xx with a JSON reason, never a 5xx; the server
keeps answering, leaves no temporary file and frees every queue slot."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile as sf

from conftest import PipelineRun
from test_serving import first_answer, free_port

pytestmark = pytest.mark.slow
BOUNDARY = "spira-fuzz-7f3a"
FORM = f"multipart/form-data; boundary={BOUNDARY}"
MAX_UPLOAD_MB = 4
UPLOAD_TIMEOUT = 3.0  # seconds; the slow uploads below take longer, every other request far less
MAX_QUEUE = 2
PATIENT_NAME = "P0042-maria-silva"


def voice(seconds: float, rate: int, seed: int = 0) -> np.ndarray:
    """A voiced tone in noise (what the content is does not matter to these checks)."""
    t = np.arange(int(seconds * rate)) / rate
    tone = 0.3 * np.sin(2 * np.pi * 140 * t) * (1 + 0.4 * np.sin(2 * np.pi * 4 * t))
    return (tone + 0.01 * np.random.default_rng(seed).standard_normal(t.size)).astype(np.float32)


def encoded(folder: Path, name: str, samples: np.ndarray, rate: int, **options) -> bytes:
    path = folder / name
    sf.write(path, samples, rate, **options)
    return path.read_bytes()


def one_hour_flac(folder: Path) -> bytes:
    """A real one-hour 8 kHz FLAC, cheap to make: one voiced second, then silence (90 KiB)."""
    path = folder / "hour.flac"
    with sf.SoundFile(path, "w", 8000, 1, "PCM_16") as handle:
        handle.write(voice(1.0, 8000))
        silence = np.zeros(8000 * 60, dtype=np.float32)
        for _ in range(60):
            handle.write(silence)
    return path.read_bytes()


def flipped(content: bytes, start: int, every: int) -> bytes:
    """Every `every`-th byte from `start` on inverted: a corrupt payload behind an intact header."""
    data = bytearray(content)
    for index in range(start, len(data), every):
        data[index] ^= 0xFF
    return bytes(data)


def with_bytes(content: bytes, offset: int, replacement: bytes) -> bytes:
    return content[:offset] + replacement + content[offset + len(replacement) :]


def multipart(*parts: tuple[str, str | None, bytes], boundary: str = BOUNDARY, closed: bool = True) -> bytes:
    """A multipart/form-data body of (field, filename or None for a plain field, content)."""
    body = b""
    for field, filename, content in parts:
        disposition = f'form-data; name="{field}"' + (f'; filename="{filename}"' if filename is not None else "")
        body += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n".encode()
        body += (b"Content-Type: application/octet-stream\r\n" if filename is not None else b"") + b"\r\n" + content + b"\r\n"
    return body + (f"--{boundary}--\r\n".encode() if closed else b"")


def request_head(length: int | None, content_type: str | None = FORM, extra: str = "") -> bytes:
    lines = ["POST /predict HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"Content-Type: {content_type}"] if content_type is not None else []
    lines += [f"Content-Length: {length}"] if length is not None else []
    return ("\r\n".join(lines) + "\r\n" + extra + "\r\n").encode()


GOOD_SAMPLES = voice(3.0, 48000, seed=5)  # 48 kHz: the good upload is resampled


@dataclass(frozen=True)
class Case:
    name: str
    head: bytes
    body: bytes
    status: int
    reason: str

    @classmethod
    def upload(cls, name: str, filename: str, content: bytes, reason: str) -> Case:
        body = multipart(("file", filename, content))
        return cls(name, request_head(len(body)), body, 422, reason)

    @classmethod
    def form(cls, name: str, body: bytes, status: int, reason: str, content_type: str | None = FORM) -> Case:
        return cls(name, request_head(len(body), content_type), body, status, reason)


def answer_of(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    response = http.client.HTTPResponse(sock)
    response.begin()
    return response.status, {key.lower(): value for key, value in response.getheaders()}, response.read()


def send(port: int, head: bytes, body: bytes = b"", timeout: float = 30) -> tuple[int, dict[str, str], bytes]:
    """One request over a fresh connection: (status, headers, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(head + body)
        return answer_of(sock)


def fuzz_cases(folder: Path) -> list[Case]:
    folder.mkdir(exist_ok=True)
    wav = encoded(folder, "a.wav", voice(3.0, 16000), 16000, subtype="PCM_16")
    flac = encoded(folder, "a.flac", voice(3.0, 16000), 16000)
    mp3 = encoded(folder, "a.mp3", voice(3.0, 16000), 16000, format="MP3")
    ogg = encoded(folder, "a.ogg", voice(3.0, 16000), 16000, format="OGG", subtype="VORBIS")
    aiff = encoded(folder, "a.aiff", voice(3.0, 16000), 16000, format="AIFF", subtype="PCM_16")
    random_bytes = np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    nan = voice(2.0, 16000)
    nan[1000:1010] = np.nan
    data_size = wav.index(b"data") + 4  # the data chunk's size field
    # STREAMINFO's 36-bit total sample count: the low 4 bits of byte 21 of the file, then bytes 22-25.
    uploads = [
        Case.upload("zero bytes .wav", "empty.wav", b"", "empty_file"),
        Case.upload("zero bytes .mp3", "empty.mp3", b"", "empty_file"),
        Case.upload("zero bytes .flac", "empty.flac", b"", "empty_file"),
        Case.upload("zero bytes, no extension", "recording", b"", "empty_file"),
        Case.upload("WAV header only", "a.wav", wav[:44], "corrupt_audio"),
        Case.upload("WAV cut in half", "a.wav", wav[: len(wav) // 2], "corrupt_audio"),
        Case.upload("WAV first 10 bytes", "a.wav", wav[:10], "corrupt_audio"),
        Case.upload("WAV fmt chunk zeroed", "a.wav", with_bytes(wav, 20, bytes(16)), "corrupt_audio"),
        Case.upload("WAV declares 2 GiB of data", "a.wav", with_bytes(wav, data_size, (0x7FFFFFF0).to_bytes(4, "little")), "corrupt_audio"),
        Case.upload("WAV at 4 kHz", "a.wav", encoded(folder, "low.wav", voice(2.0, 4000), 4000), "unsupported_sample_rate"),
        Case.upload("WAV at 192 kHz", "a.wav", encoded(folder, "high.wav", voice(1.5, 192000), 192000), "unsupported_sample_rate"),
        Case.upload("WAV with NaN samples", "a.wav", encoded(folder, "nan.wav", nan, 16000, subtype="FLOAT"), "non_finite_samples"),
        Case.upload("silent WAV", "a.wav", encoded(folder, "silent.wav", np.zeros(32000, np.float32), 16000), "silent_audio"),
        Case.upload("0.3 s WAV", "a.wav", encoded(folder, "short.wav", voice(0.3, 16000), 16000), "too_short"),
        Case.upload("FLAC cut in half", "a.flac", flac[: len(flac) // 2], "corrupt_audio"),
        Case.upload("FLAC signature only", "a.flac", b"fLaC", "corrupt_audio"),
        Case.upload("FLAC declares 2^34 samples", "a.flac", with_bytes(flac, 21, bytes([flac[21] & 0xF0 | 0x04, 0, 0, 0, 0])), "too_long"),
        Case.upload("FLAC frames corrupted", "a.flac", flipped(flac, 200, 7), "corrupt_audio"),
        Case.upload("one-hour FLAC", f"{PATIENT_NAME}.flac", one_hour_flac(folder), "too_long"),
        Case.upload("MP3 cut to a third", "a.mp3", mp3[: len(mp3) // 3], "too_short"),
        Case.upload("MP3 first 3 bytes", "a.mp3", mp3[:3], "corrupt_audio"),
        Case.upload("ID3 tag then garbage", "a.mp3", b"ID3\x04\x00\x00\x00\x00\x00\x0a" + random_bytes, "corrupt_audio"),
        Case.upload("MPEG frame sync then garbage", "a.mp3", b"\xff\xfb" + random_bytes, "corrupt_audio"),
        Case.upload("MP3 frames corrupted", "a.mp3", flipped(mp3, 4, 3), "corrupt_audio"),
        Case.upload("OGG cut in half", "a.ogg", ogg[: len(ogg) // 2], "too_short"),
        Case.upload("OGG first 60 bytes", "a.ogg", ogg[:60], "corrupt_audio"),
        Case.upload("AIFF cut in half", "a.aiff", aiff[: len(aiff) // 2], "corrupt_audio"),
        Case.upload("text named .wav", "notes.wav", b"not audio at all\n" * 40, "not_audio"),
        Case.upload("PNG named .mp3", "a.mp3", b"\x89PNG\r\n\x1a\n" + random_bytes, "not_audio"),
        Case.upload("JSON named .flac", "a.flac", json.dumps({"probability": 1.0}).encode(), "not_audio"),
        Case.upload("ZIP named .wav", "a.wav", b"PK\x03\x04" + random_bytes, "not_audio"),
        Case.upload("random bytes, no extension", "blob", b"\x00" + random_bytes, "not_audio"),
        Case.upload("HTML named .ogg", "a.ogg", b"<!doctype html><html><body>404</body></html>", "not_audio"),
        Case.upload("PDF named .wav", "a.wav", b"%PDF-1.7\n" + random_bytes, "not_audio"),
        Case.upload("ELF named .mp3", "a.mp3", b"\x7fELF\x02\x01\x01" + random_bytes, "not_audio"),
        Case.upload("truncated FLAC named .wav", "a.wav", flac[: len(flac) // 2], "corrupt_audio"),
        Case.upload("silent WAV named .mp3", "a.mp3", encoded(folder, "silent2.wav", np.zeros(32000, np.float32), 16000), "silent_audio"),
        Case.upload("path in the file name", f"../../etc/{PATIENT_NAME}.wav", b"plain text", "not_audio"),
        Case.upload("3000-character file name", "x" * 3000 + ".wav", b"plain text", "not_audio"),
    ]
    one_file = multipart(("file", "a.wav", wav))
    part_without_disposition = f"--{BOUNDARY}\r\nContent-Type: audio/wav\r\n\r\n".encode() + wav + f"\r\n--{BOUNDARY}--\r\n".encode()
    requests = [
        Case("chunked, no Content-Length", request_head(None, extra="Transfer-Encoding: chunked\r\n"), b"4\r\nRIFF\r\n0\r\n\r\n", 411, "length_required"),
        Case("declares 1 TB", request_head(10**12), one_file[:1000], 413, "upload_too_large"),
        Case("declares one byte above the limit", request_head(MAX_UPLOAD_MB * 2**20 + 1), one_file[:1000], 413, "upload_too_large"),
        Case("one-hour 8 kHz WAV (57.6 MB)", request_head(44 + 3600 * 8000 * 2 + 200), one_file[:1000], 413, "upload_too_large"),
        Case.form("JSON body", b'{"file": "a.wav"}', 415, "not_multipart", "application/json"),
        Case.form("raw WAV body", wav, 415, "not_multipart", "audio/wav"),
        Case.form("no Content-Type", one_file, 415, "not_multipart", None),
        Case.form("text/plain", b"file=a.wav", 415, "not_multipart", "text/plain"),
        Case.form("url-encoded form", b"file=a.wav", 415, "not_multipart", "application/x-www-form-urlencoded"),
        Case.form("multipart/mixed", one_file, 415, "not_multipart", f"multipart/mixed; boundary={BOUNDARY}"),
        Case.form("multipart without a boundary", one_file, 400, "malformed_multipart", "multipart/form-data"),
        Case.form("another boundary in the body", multipart(("file", "a.wav", wav), boundary="other"), 400, "malformed_multipart"),
        Case.form("no closing boundary", multipart(("file", "a.wav", wav), closed=False), 400, "no_file_field"),
        Case.form("garbage body", b"hello world\r\n" * 10, 400, "malformed_multipart"),
        Case.form("empty body", b"", 400, "no_file_field"),
        Case.form("part without Content-Disposition", part_without_disposition, 400, "malformed_multipart"),
        Case.form("two files", multipart(("file", "a.wav", wav), ("file", "b.wav", wav)), 400, "malformed_multipart"),
        Case.form("file and two plain fields", multipart(("file", "a.wav", wav), ("a", None, b"1"), ("b", None, b"2")), 400, "malformed_multipart"),
        Case.form("a part header of 5000 bytes", multipart(("file", "a" * 5000 + ".wav", wav)), 400, "malformed_multipart"),
        Case.form("a part header of 100 KB", multipart(("file", "a" * 100_000 + ".wav", wav)), 400, "malformed_multipart"),
        Case.form("the field is not 'file'", multipart(("audio", "a.wav", wav)), 400, "no_file_field"),
        Case.form("'file' is a plain field", multipart(("file", None, b"a.wav")), 400, "no_file_field"),
    ]
    return uploads + requests


@dataclass(frozen=True)
class Server:
    port: int
    process: subprocess.Popen
    tmp: Path  # the server's TMPDIR
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def queue(self) -> dict[str, int]:
        return httpx.get(f"{self.base}/queue", timeout=10).json()

    def wait_in_flight(self, count: int) -> None:
        """Until the server counts `count` /predict requests in progress (up to 10 s)."""
        for _ in range(200):
            if self.queue()["in_flight"] == count:
                return
            time.sleep(0.05)
        raise AssertionError(f"the server never counted {count} requests in flight: {self.queue()}")

    def leftovers(self) -> list[str]:
        # onnxruntime keeps a 51-byte session counter, `.ses`, in TMPDIR (tests/test_serving.py).
        return sorted(str(path.relative_to(self.tmp)) for path in self.tmp.rglob("*") if path.name != ".ses")


@pytest.fixture(scope="module")
def server(smoke_pipeline: PipelineRun, tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("fuzz-server")
    tmp, log = folder / "tmp", folder / "server.log"
    tmp.mkdir()
    port = free_port()
    env = os.environ | {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", "TMPDIR": str(tmp)}
    command = ["spira", "serve", "--port", str(port), "--host", "127.0.0.1", "--max-upload-mb", str(MAX_UPLOAD_MB),
               "--max-queue", str(MAX_QUEUE), "--upload-timeout", str(UPLOAD_TIMEOUT)]  # fmt: skip
    with open(log, "w") as stream:
        process = subprocess.Popen(command, cwd=smoke_pipeline.repo, env=env, stdout=stream, stderr=subprocess.STDOUT, text=True)
    running = Server(port, process, tmp, log)
    try:
        assert first_answer(process, f"{running.base}/health").status_code == 200
        yield running
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def good_wav(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return encoded(tmp_path_factory.mktemp("good"), "good.wav", GOOD_SAMPLES, 48000, subtype="PCM_16")


def assert_still_serving(server: Server, good_wav: bytes) -> dict:
    """/health answers, a good upload is scored, no slot is held and no temporary file is left."""
    assert httpx.get(f"{server.base}/health", timeout=10).json()["status"] == "ok"
    scored = httpx.post(f"{server.base}/predict", files={"file": ("good.wav", good_wav)}, timeout=60)
    assert scored.status_code == 200 and scored.json()["status"] == "ok", scored.text
    assert server.queue()["in_flight"] == 0
    assert server.leftovers() == []
    assert server.process.poll() is None
    return scored.json()


def test_fuzz_set_gets_its_4xx_with_a_reason(server: Server, good_wav: bytes, tmp_path: Path):
    cases = fuzz_cases(tmp_path / "inputs")
    assert len(cases) >= 50 and len({case.name for case in cases}) == len(cases)
    before = assert_still_serving(server, good_wav)
    answers = {}
    for case in cases:
        status, headers, body = send(server.port, case.head, case.body)
        answers[case.name] = (status, headers.get("content-type"), json.loads(body))
    expected = {case.name: (case.status, "application/json", case.reason) for case in cases}
    assert {name: (status, kind, record.get("reason")) for name, (status, kind, record) in answers.items()} == expected
    for name, (_, _, record) in answers.items():
        message = record["message"]
        assert record["status"] == "error" and isinstance(message, str) and len(message) > 10 and "\n" not in message, name
    # The reasons name the problem, in words a caller can act on.
    messages = {name: record["message"] for name, (_, _, record) in answers.items()}
    assert messages["one-hour FLAC"] == f"{PATIENT_NAME}.flac: its header declares 3601.0 s of audio, longer than the 600 s limit"
    assert messages["declares 1 TB"] == f"upload of {10**12} bytes, larger than the {MAX_UPLOAD_MB * 2**20} byte limit"
    assert "truncated" in messages["WAV cut in half"] and "not an audio file" in messages["text named .wav"]
    assert "Too many files" in messages["two files"] and "Missing boundary" in messages["multipart without a boundary"]
    assert messages["a part header of 5000 bytes"].endswith("(Invalid multipart data: Maximum header size exceeded)")
    assert "closing boundary" in messages["no closing boundary"]
    assert messages["JSON body"].startswith("Content-Type application/json: send multipart/form-data")
    # After all of it: the same answer for the same good upload, nothing on disk, nothing in flight.
    assert assert_still_serving(server, good_wav) == before
    log = server.log.read_text()
    assert PATIENT_NAME not in log and "maria" not in log
    assert "Traceback" not in log and "Exception in ASGI application" not in log  # what uvicorn logs with a 500


def test_audio_under_a_wrong_name_is_scored_by_its_content(server: Server, good_wav: bytes, tmp_path: Path):
    """The extension does not decide the format: a FLAC named .wav, a WAV named .mp3 or with
    no extension at all get the probability of the correctly named file."""
    flac = encoded(tmp_path, "good.flac", GOOD_SAMPLES, 48000)  # lossless: the WAV's 16-bit samples
    probabilities = {}
    for name, content in {"good.wav": good_wav, "good.mp3": good_wav, "recording": good_wav, "good.flac": flac, "flac.wav": flac}.items():
        answer = httpx.post(f"{server.base}/predict", files={"file": (name, content)}, timeout=60)
        assert answer.status_code == 200, (name, answer.text)
        probabilities[name] = answer.json()["probability"]
    # Each content gets one probability whatever its name; the FLAC's 16-bit samples score within rounding of the WAV's.
    assert probabilities["good.wav"] == probabilities["good.mp3"] == probabilities["recording"], probabilities
    assert probabilities["good.flac"] == probabilities["flac.wav"], probabilities
    assert abs(probabilities["good.wav"] - probabilities["good.flac"]) < 1e-3, probabilities
    assert server.leftovers() == []


def test_slow_uploads_fill_the_queue_then_time_out(server: Server, good_wav: bytes):
    """MAX_QUEUE uploads held open take every slot: the next request gets 503 with Retry-After
    and a reason, at once and without its body being read; the held ones get 408 after the
    upload timeout and free their slots; an upload that only trickles in, within the timeout,
    is scored; one abandoned half-way frees its slot too."""
    body = multipart(("file", "good.wav", good_wav))
    head = request_head(len(body))
    stalled = socket.create_connection(("127.0.0.1", server.port), timeout=30)  # headers only, then nothing
    trickling = socket.create_connection(("127.0.0.1", server.port), timeout=30)  # a byte every 0.2 s
    try:
        stalled.sendall(head)
        trickling.sendall(head + body[:100])
        server.wait_in_flight(MAX_QUEUE)
        started = time.monotonic()
        busy = httpx.post(f"{server.base}/predict", files={"file": ("good.wav", good_wav)}, timeout=30)
        assert busy.status_code == 503 and busy.headers["retry-after"] == "1"
        assert busy.json() == {
            "status": "error",
            "reason": "server_busy",
            "message": f"{MAX_QUEUE} predictions in progress, the server's limit (--max-queue {MAX_QUEUE}): retry later",
        }
        # A 503 costs nothing: a request declaring the whole upload limit is refused on its headers.
        status, headers, refused = send(server.port, request_head(MAX_UPLOAD_MB * 2**20), body[:1000])
        assert (status, headers["retry-after"], json.loads(refused)["reason"]) == (503, "1", "server_busy")
        assert time.monotonic() - started < UPLOAD_TIMEOUT  # both answered while the slots were held
        for offset in range(100, 110):
            trickling.sendall(body[offset : offset + 1])
            time.sleep(0.2)
        for held in (stalled, trickling):
            status, _, answer = answer_of(held)
            assert (status, json.loads(answer)["reason"]) == (408, "upload_timeout")
            assert json.loads(answer)["message"] == f"the upload did not arrive within {UPLOAD_TIMEOUT:g} s"
    finally:
        stalled.close()
        trickling.close()
    server.wait_in_flight(0)

    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as slow:
        slow.sendall(head)
        for start in range(0, len(body), len(body) // 5 + 1):  # five pieces over about 0.8 s
            slow.sendall(body[start : start + len(body) // 5 + 1])
            time.sleep(0.2)
        status, _, answer = answer_of(slow)
    assert status == 200 and json.loads(answer)["status"] == "ok"

    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as abandoned:
        abandoned.sendall(head + body[: len(body) // 2])
        server.wait_in_flight(1)
    server.wait_in_flight(0)
    assert_still_serving(server, good_wav)


def test_requests_uvicorn_cannot_parse_get_its_400(server: Server, good_wav: bytes):
    """Below the application: a request line or header h11 refuses gets uvicorn's 400."""
    for garbage in (b"NOT HTTP AT ALL\r\n\r\n", request_head(None, extra="Content-Length: twelve\r\n")):
        status, _, body = send(server.port, garbage)
        assert (status, body) == (400, b"Invalid HTTP request received.")
    assert_still_serving(server, good_wav)
