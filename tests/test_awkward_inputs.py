"""Every input accounted for, every output whole: files that are not audio files at all
(folders, FIFOs, devices, unreadable files, headers claiming terabytes, empty or
unreadable noise) are quarantined with a reason, and an output that cannot be written
(file-size limit, read-only folder) ends the stage with one line and no partial output.

Root ignores permission bits; where a case needs them, the command runs without
CAP_DAC_OVERRIDE (setpriv), so the case is tested as root too.
"""

from __future__ import annotations

import os
import resource
import shutil
import stat
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from conftest import REPO_ROOT
from spira.augment.pipeline import NoNoiseError, load_noise_clips
from spira.config import compose_params
from spira.data.privacy import salted_id
from spira.data.quarantine import QUARANTINE_FILE, QUARANTINE_SUMMARY_FILE

SALT = "awkward-salt"
RATE = 16000
ENV = os.environ | {"SPIRA_SALT": SALT, "PYTHONDONTWRITEBYTECODE": "1"}


def without_permission_override() -> list[str]:
    """The prefix that makes permission bits count for the command: none for a normal user;
    for root, setpriv dropping CAP_DAC_OVERRIDE (the test is skipped where that is impossible)."""
    if os.geteuid() != 0:
        return []
    prefix = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]
    if shutil.which("setpriv") is None or subprocess.run([*prefix, "true"], capture_output=True).returncode != 0:
        pytest.skip("running as root, and setpriv cannot drop CAP_DAC_OVERRIDE here: permission bits do not apply to root")
    return prefix


def tone(seed: int, seconds: float = 1.3) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.5 * np.sin(2 * np.pi * (120 + 9 * seed) * t)).astype(np.float32)


def pcm_header(container: bytes, declared_size: int, present: bytes, ds64_size: int | None = None) -> bytes:
    """A 16 kHz mono 16-bit WAV (RIFF) or RF64 whose data chunk declares `declared_size` bytes."""
    fmt = b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, RATE, 2 * RATE, 2, 16)
    ds64 = b"ds64" + struct.pack("<IQQQI", 28, 0xFFFFFFFF, ds64_size, ds64_size // 2, 0) if ds64_size is not None else b""
    body = b"WAVE" + ds64 + fmt + b"data" + struct.pack("<I", declared_size) + present
    return container + struct.pack("<I", 0xFFFFFFFF if ds64_size is not None else len(body)) + body


def aiff_claiming(frames: int, present: bytes) -> bytes:
    """A 16 kHz mono 16-bit AIFF whose COMM chunk declares `frames` frames."""
    rate_80bit = bytes.fromhex("400CFA00000000000000")  # 16000.0 as an IEEE extended float
    comm = b"COMM" + struct.pack(">IhIh", 18, 1, frames, 16) + rate_80bit
    ssnd = b"SSND" + struct.pack(">III", 8 + len(present), 0, 0) + present
    return b"FORM" + struct.pack(">I", 4 + len(comm) + len(ssnd)) + b"AIFF" + comm + ssnd


def pcm_bytes(seed: int, seconds: float, big_endian: bool = False) -> bytes:
    return (tone(seed, seconds) * 32767).astype(">i2" if big_endian else "<i2").tobytes()


# Good rows: two patients and two controls per split.
GOOD = [(f"audio/{split}_{label}{n}.wav", label, f"S-{split}-{label}{n}", split) for split in ("train", "val", "test") for label in (1, 0) for n in (1, 2)]  # fmt: skip
# Awkward rows -> the reason each must be quarantined under.
AWKWARD = {
    "audio/folder.wav": "not_a_file",
    "audio/pipe.wav": "not_a_file",
    "audio/locked.wav": "unreadable_file",
    "audio/rf64_terabytes.wav": "corrupt_audio",
    "audio/riff_4gb.wav": "corrupt_audio",
    "audio/aiff_claims.aiff": "corrupt_audio",
    "/dev/zero": "path_outside_root",
    "audio/to_dev_null.wav": "path_outside_root",
}
DEVICE = "audio/device.wav"  # a character device inside the root: only root may create one


def write_awkward_corpus(root: Path) -> dict[str, str]:
    """The corpus; returns the awkward rows it lists with their expected reasons."""
    dataset = root / "dataset"
    (dataset / "audio").mkdir(parents=True)
    for seed, (path, *_) in enumerate(GOOD):
        sf.write(dataset / path, tone(seed), RATE, subtype="PCM_16")
    audio = dataset / "audio"
    (audio / "folder.wav").mkdir()
    os.mkfifo(audio / "pipe.wav")  # nobody writes to it: opening it would block for ever
    sf.write(audio / "locked.wav", tone(40), RATE, subtype="PCM_16")
    (audio / "locked.wav").chmod(0)
    (audio / "rf64_terabytes.wav").write_bytes(pcm_header(b"RF64", 0xFFFFFFFF, pcm_bytes(41, 2.0), ds64_size=1 << 42))
    (audio / "riff_4gb.wav").write_bytes(pcm_header(b"RIFF", 0xFFFFFFF0, pcm_bytes(42, 2.0)))
    (audio / "aiff_claims.aiff").write_bytes(aiff_claiming(0xFFFFFFF0, pcm_bytes(43, 2.0, big_endian=True)))
    os.symlink("/dev/null", audio / "to_dev_null.wav")
    expected = dict(AWKWARD)
    if os.geteuid() == 0:
        os.mknod(audio / "device.wav", 0o644 | stat.S_IFCHR, os.makedev(1, 3))
        expected[DEVICE] = "not_a_file"
    lines = ["file,label,speaker_id,split"] + [",".join(map(str, row)) for row in GOOD]
    lines += [f"{path},1,S-awkward-{n},train" for n, path in enumerate(expected)]
    (dataset / "manifest.csv").write_text("\n".join(lines) + "\n")

    noise = root / "noise"
    (noise / "dir.wav").mkdir(parents=True)
    for number in range(3):
        sf.write(noise / f"ward_{number}.wav", tone(60 + number, 2.0), RATE, subtype="PCM_16")
    (noise / "empty.wav").write_bytes(b"")
    sf.write(noise / "locked.wav", tone(70, 2.0), RATE, subtype="PCM_16")
    (noise / "locked.wav").chmod(0)
    (noise / "noise_data.csv").write_text("path_wav\n" + "\n".join(["ward_0.wav", "ward_1.wav", "ward_2.wav", "empty.wav", "locked.wav", "dir.wav"]) + "\n")
    return expected


def stage_params(tmp_path: Path, *overrides: str) -> Path:
    """params.yaml and dvc.yaml in tmp_path: the prepare stage run there writes tmp_path/data/prepared."""
    shutil.copy2(REPO_ROOT / "dvc.yaml", tmp_path / "dvc.yaml")
    params = tmp_path / "params.yaml"
    compose_params(
        params,
        [
            "data=manifest",
            f"data.root={tmp_path / 'dataset'}",
            f"data.noise_root={tmp_path / 'noise'}",
            "data.split.strategy=given",
            "data.max_quarantine_fraction=1.0",
            "data.num_workers=0",
            *overrides,
        ],
    )
    return params


def run_prepare(params: Path, prefix: list[str] = (), file_size_limit: int | None = None) -> subprocess.CompletedProcess:
    """The prepare stage as DVC runs it; `file_size_limit` bytes per written file (RLIMIT_FSIZE: a write past it
    fails with EFBIG, Python ignoring SIGXFSZ)."""

    def limit() -> None:
        if file_size_limit is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit, file_size_limit))

    command = [*prefix, sys.executable, "-m", "spira.stages.prepare", "--params", str(params)]
    return subprocess.run(command, cwd=params.parent, env=ENV, capture_output=True, text=True, timeout=300, preexec_fn=limit)


@pytest.mark.slow
def test_every_awkward_input_is_quarantined_with_its_reason_and_every_row_accounted_for(tmp_path):
    prefix = without_permission_override()
    expected = write_awkward_corpus(tmp_path)
    finished = run_prepare(stage_params(tmp_path), prefix)
    assert finished.returncode == 0, finished.stderr

    report = pd.read_csv(tmp_path / "data/quarantine" / QUARANTINE_FILE, keep_default_na=False)
    quarantined = report[report["action"] == "quarantined"]
    dataset = quarantined[quarantined["set"] == "dataset"]
    reasons = dict(zip(dataset["path"], dataset["reason"]))
    shown = {path: reasons.get(path) or reasons.get(f"<outside data.root>/{Path(path).name}") for path in expected}
    assert shown == expected
    messages = dict(zip(dataset["path"], dataset["message"]))
    assert messages["audio/pipe.wav"] == "audio/pipe.wav: a named pipe (FIFO), not an audio file"
    assert messages["audio/folder.wav"] == "audio/folder.wav: a folder, not an audio file"
    assert messages["audio/locked.wav"] == "audio/locked.wav: cannot be read (Permission denied)"
    assert "declares 4398046511104 data bytes (4.4 TB), file holds 64000" in messages["audio/rf64_terabytes.wav"]
    assert "declares 8589934560 data bytes (8.6 GB)" in messages["audio/aiff_claims.aiff"]

    noise = quarantined[quarantined["set"] == "noise"]
    assert dict(zip(noise["path"], noise["reason"])) == {"empty.wav": "empty_file", "locked.wav": "unreadable_file", "dir.wav": "not_a_file"}

    # Every row in: accepted (in the manifest) or quarantined with a reason, exactly once.
    summary = pd.read_json(tmp_path / "data/quarantine" / QUARANTINE_SUMMARY_FILE, typ="series")
    manifest = pd.read_csv(tmp_path / "data/prepared" / "manifest.csv", dtype=str)
    assert summary["dataset"]["rows_in"] == len(GOOD) + len(expected) == len(manifest) + len(dataset)
    assert sorted(manifest["file_id"]) == sorted(salted_id(path, SALT) for path, *_ in GOOD)
    assert (dataset["reason"] != "").all() and (dataset["message"] != "").all()
    noise_manifest = pd.read_csv(tmp_path / "data/prepared" / "noise_manifest.csv")
    assert summary["noise"]["rows_in"] == 6 == len(noise_manifest) + len(noise)
    assert summary["noise"]["by_reason"] == {"empty_file": 1, "not_a_file": 1, "unreadable_file": 1}


def test_headers_claiming_gigabytes_or_terabytes_are_rejected_without_allocating_and_a_streamed_wav_is_decoded(tmp_path):
    (tmp_path / "rf64.wav").write_bytes(pcm_header(b"RF64", 0xFFFFFFFF, pcm_bytes(1, 2.0), ds64_size=1 << 42))
    (tmp_path / "aiff.aiff").write_bytes(aiff_claiming(0xFFFFFFF0, pcm_bytes(2, 2.0, big_endian=True)))
    # 0xFFFFFFFF: the size a streaming writer puts when it never learns the real one; what is there is decoded.
    (tmp_path / "streamed.wav").write_bytes(pcm_header(b"RIFF", 0xFFFFFFFF, pcm_bytes(3, 2.0)))
    script = """
import resource, sys
from spira.data.validate import FileCheck, decode_and_check
check = FileCheck(16000, 0.5, 1e-4, 0.999, 0.01, 8000, 96000)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
for name in sys.argv[1:]:
    result, samples = decode_and_check(name, name, check)
    print(name, result.reason, result.n_samples)
print("grew_kib", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
"""
    finished = subprocess.run(
        [sys.executable, "-c", script, "rf64.wav", "aiff.aiff", "streamed.wav"], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    lines = finished.stdout.splitlines()
    assert lines[:3] == ["rf64.wav corrupt_audio 0", "aiff.aiff corrupt_audio 0", "streamed.wav None 32000"]
    assert int(lines[3].split()[1]) < 50_000  # KiB: nothing sized by the header


SAFETY_SCRIPT = """
import resource, sys
from spira.safety import OutputWriteError, atomic_file, staged_folder
resource.setrlimit(resource.RLIMIT_FSIZE, (10_000, 10_000))
try:
    with staged_folder("features", "the features", {}) as staging:
        (staging / "train.npy").write_bytes(bytes(50_000))
except OutputWriteError as error:
    print(error)
try:
    with atomic_file("metrics.json") as temporary:
        temporary.write_bytes(bytes(50_000))
except OutputWriteError as error:
    print(error)
"""


def test_a_file_size_limit_fails_a_folder_or_file_write_with_one_line_keeping_the_old_output(tmp_path):
    (tmp_path / "features").mkdir()
    (tmp_path / "features" / "train.npy").write_bytes(b"old")
    (tmp_path / "metrics.json").write_text("{}")
    finished = subprocess.run([sys.executable, "-c", SAFETY_SCRIPT], cwd=tmp_path, capture_output=True, text=True, check=True)
    folder_line, file_line = finished.stdout.splitlines()
    assert folder_line.startswith(f"cannot write the features at {tmp_path / 'features'}: File too large; ")
    assert " free of " in folder_line
    assert folder_line.endswith(f" on that file system. Nothing was written: {tmp_path / 'features'} is as it was")
    assert file_line.startswith(f"cannot write metrics.json at {tmp_path / 'metrics.json'}: File too large; ")
    assert (tmp_path / "features" / "train.npy").read_bytes() == b"old"
    assert (tmp_path / "metrics.json").read_text() == "{}"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["features", "metrics.json"]


def small_corpus(tmp_path: Path) -> None:
    (tmp_path / "dataset" / "audio").mkdir(parents=True)
    for seed, (path, *_) in enumerate(GOOD):
        sf.write(tmp_path / "dataset" / path, tone(seed), RATE, subtype="PCM_16")
    (tmp_path / "dataset" / "manifest.csv").write_text("file,label,speaker_id,split\n" + "\n".join(",".join(map(str, row)) for row in GOOD) + "\n")
    (tmp_path / "noise").mkdir()


def previous_output(folder: Path) -> None:
    folder.mkdir(parents=True)
    (folder / "manifest.csv").write_text("the previous run's manifest\n")


def test_prepare_on_a_full_file_system_fails_with_one_line_and_leaves_the_previous_output(tmp_path):
    small_corpus(tmp_path)
    previous_output(tmp_path / "data/prepared")
    # 50 kB per file: the first prepared recording (1.3 s of float32 at 16 kHz, 83 kB) does not fit.
    finished = run_prepare(stage_params(tmp_path), file_size_limit=50_000)
    assert finished.returncode == 1
    last = finished.stderr.strip().splitlines()[-1]
    # The file that did not fit, named where it would have ended.
    assert last.startswith(f"error: cannot write the prepared data at {tmp_path / 'data/prepared' / 'audio'}/")
    assert ".wav: File too large; " in last and " free of " in last and last.endswith(f"{tmp_path / 'data/prepared'} is as it was")
    assert "Traceback" not in finished.stderr
    assert (tmp_path / "data/prepared" / "manifest.csv").read_text() == "the previous run's manifest\n"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["data", "dataset", "dvc.yaml", "noise", "params.yaml"]
    assert sorted(path.name for path in (tmp_path / "data").iterdir()) == ["prepared"]


def test_prepare_into_a_read_only_folder_fails_with_one_line_and_leaves_the_previous_output(tmp_path):
    prefix = without_permission_override()
    small_corpus(tmp_path)
    previous_output(tmp_path / "data" / "prepared")
    params = stage_params(tmp_path)
    (tmp_path / "data").chmod(0o555)
    try:
        finished = run_prepare(params, prefix)
    finally:
        (tmp_path / "data").chmod(0o755)
    assert finished.returncode == 1
    last = finished.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: cannot write the prepared data at {tmp_path / 'data' / 'prepared'}: Permission denied; ")
    assert " free of " in last
    assert "Traceback" not in finished.stderr
    assert sorted(path.name for path in (tmp_path / "data").iterdir()) == ["prepared"]
    assert (tmp_path / "data" / "prepared" / "manifest.csv").read_text() == "the previous run's manifest\n"


def test_a_prepared_noise_file_emptied_since_prepare_is_refused_with_its_name(tmp_path):
    (tmp_path / "noise").mkdir()
    sf.write(tmp_path / "noise" / "n1.wav", tone(1, 2.0), RATE, subtype="FLOAT")
    sf.write(tmp_path / "noise" / "n2.wav", np.zeros(0, dtype=np.float32), RATE, subtype="FLOAT")
    (tmp_path / "noise" / "n3.wav").write_bytes(b"")
    pd.DataFrame({"noise_id": ["n1", "n2"], "path": ["noise/n1.wav", "noise/n2.wav"], "n_samples": [32000, 0], "split": ["shared"] * 2}).to_csv(
        tmp_path / "noise_manifest.csv", index=False
    )
    with pytest.raises(NoNoiseError, match=rf"^{tmp_path / 'noise' / 'n2.wav'}: prepared ward-noise recording is empty \(0 samples\)"):
        load_noise_clips(tmp_path, "train")
    (tmp_path / "noise_manifest.csv").write_text("noise_id,path,n_samples,split\nn3,noise/n3.wav,0,shared\n")
    with pytest.raises(NoNoiseError, match=rf"^{tmp_path / 'noise' / 'n3.wav'}: prepared ward-noise recording cannot be read"):
        load_noise_clips(tmp_path, "train")


CHECKPOINT_SCRIPT = """
import resource, signal, torch
from lightning.fabric.utilities.cloud_io import _atomic_save
from spira.errors import exit_on_user_error
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (10_000, 10_000))
with exit_on_user_error():
    _atomic_save({"weights": torch.zeros(100_000)}, "models/last.ckpt")
"""


def test_a_full_disk_while_lightning_saves_a_checkpoint_ends_with_one_line(tmp_path):
    """The write train and export leave to libraries (Lightning's checkpoint save, here under a
    10 kB file-size limit) ends the stage with one line and no checkpoint file."""
    (tmp_path / "models").mkdir()
    finished = subprocess.run([sys.executable, "-c", CHECKPOINT_SCRIPT], cwd=tmp_path, capture_output=True, text=True)
    assert finished.returncode == 1
    assert "Traceback" not in finished.stderr
    last = finished.stderr.strip().splitlines()[-1]
    assert last.startswith("error: cannot write an output of this stage: File too large; ") and " free of " in last
    assert list((tmp_path / "models").iterdir()) == []
