"""A generated corpus with one file per kind of bad input: each is quarantined under its reason,
every good file passes, and rows in = accepted + quarantined."""

from __future__ import annotations

import json
import logging
import os
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from spira.config import compose_config
from spira.data import prepare as prepare_module
from spira.data.prepare import prepare_dataset
from spira.pipeline.data import prepare_settings
from spira.data.privacy import salted_id
from spira.data.quarantine import QUARANTINE_FILE, QUARANTINE_SUMMARY_FILE, format_report_table
from spira.data.rows import PrepareError
from spira.parallel import ordered_map

SALT = "salt-from-the-environment"
RATE = 22050


def voice(seed: int, seconds: float = 1.3, rate: int = RATE, level: float = 0.5) -> np.ndarray:
    """A different two-tone signal per seed, so every good file has its own content hash."""
    t = np.arange(int(seconds * rate)) / rate
    f0 = 120 + 7 * seed
    return (level * (0.7 * np.sin(2 * np.pi * f0 * t) + 0.3 * np.sin(2 * np.pi * 3.1 * f0 * t))).astype(np.float32)


# Good files: (path, label, speaker, split, how to write it). Two patients and two
# controls per split, mixed containers and rates.
GOOD = [
    ("audio/tr_p1.wav", "patient", "SPK-TR-P1", "train", ("WAV", "PCM_16", 16000)),
    ("audio/tr_p2.flac", "1", "SPK-TR-P2", "train", ("FLAC", "PCM_24", 44100)),
    ("audio/tr_c1.ogg", "control", "SPK-TR-C1", "train", ("OGG", "VORBIS", 48000)),
    ("audio/tr_c2.mp3", "0", "SPK-TR-C2", "train", ("MP3", None, 32000)),
    ("audio/va_p1.wav", "True", "SPK-VA-P1", "eval", ("WAV", "FLOAT", 8000)),
    ("audio/va_p2.wav", "positive", "SPK-VA-P2", "val", ("WAV", "PCM_U8", 11025)),
    ("audio/va_c1.wav", "False", "SPK-VA-C1", "validation", ("WAV", "PCM_32", 96000)),
    ("audio/va_c2.flac", "negative", "SPK-VA-C2", "val", ("FLAC", "PCM_16", 22050)),
    ("audio/te_p1.wav", "1.0", "SPK-TE-P1", "test", ("WAV", "DOUBLE", 88200)),
    ("audio/te_p2.wav", "PATIENT", "SPK-TE-P2", "test", ("WAV", "PCM_24", 24000)),
    ("audio/te_c1.wav", "0", "SPK-TE-C1", "teste", ("WAV", "PCM_16", 16000)),
    ("audio/te_c2.wav", "0", "SPK-TE-C2", "test", ("WAV", "PCM_16", 16000)),
    # Accepted with a warning: clipped, and without a speaker id.
    ("audio/tr_clipped.wav", "1", "SPK-TR-P3", "train", ("WAV", "PCM_16", 16000)),
    ("audio/tr_anonymous.wav", "0", "", "train", ("WAV", "PCM_16", 16000)),
]

# Bad rows: (path, label, speaker, split, expected reason).
BAD = [
    ("audio/missing.wav", "1", "SPK-B1", "train", "missing_file"),
    ("audio/empty.wav", "1", "SPK-B2", "train", "empty_file"),
    ("audio/truncated.wav", "1", "SPK-B3", "train", "corrupt_audio"),
    ("audio/corrupt.flac", "1", "SPK-B4", "train", "corrupt_audio"),
    ("audio/notes.wav", "1", "SPK-B5", "train", "not_audio"),
    ("audio/silent.wav", "0", "SPK-B6", "train", "silent_audio"),
    ("audio/nan.wav", "0", "SPK-B7", "train", "non_finite_samples"),
    ("audio/inf.wav", "0", "SPK-B7b", "train", "non_finite_samples"),
    ("audio/short.wav", "0", "SPK-B8", "train", "too_short"),
    ("audio/lowrate.wav", "0", "SPK-B9", "train", "unsupported_sample_rate"),
    ("audio/typo.wav", "pateint", "SPK-B10", "train", "unknown_label"),
    ("audio/nolabel.wav", "", "SPK-B11", "train", "missing_label"),
    ("audio/tr_p1.wav", "patient", "SPK-TR-P1", "train", "duplicate_row"),
    ("audio/tr_p1_copy.wav", "1", "SPK-B12", "train", "duplicate_content"),
    ("audio/tr_p2_in_test.flac", "1", "SPK-B13", "test", "content_leak"),
    ("audio/conflict_a.wav", "1", "SPK-CONFLICT", "train", "conflicting_speaker_label"),
    ("audio/conflict_b.wav", "0", "SPK-CONFLICT", "train", "conflicting_speaker_label"),
    ("audio/leak_te_p2.wav", "1", "SPK-TR-P2", "test", "speaker_leak"),
    ("../outside.wav", "1", "SPK-B14", "train", "path_outside_root"),
    ("/etc/hosts.wav", "1", "SPK-B15", "train", "path_outside_root"),
    ("audio/link_out.wav", "1", "SPK-B16", "train", "path_outside_root"),
    ("audio/holdout.wav", "1", "SPK-B17", "holdout", "unknown_split"),
]
MALFORMED_LINE = "audio/extra.wav;1;SPK-B18;train;F;40;surplus"
RAW_SPEAKERS = sorted({row[2] for row in GOOD + BAD if row[2]} | {"SPK-B18"})
GOOD_WRITES = {path: write for path, _, _, _, write in GOOD}


def write_corpus(root: Path) -> Path:
    """The corpus under root/dataset; the manifest in Latin-1 with ';' and CRLF, as Excel saves it."""
    dataset = root / "dataset"
    (dataset / "audio").mkdir(parents=True)
    for seed, (path, _, _, _, (container, subtype, rate)) in enumerate(GOOD):
        samples = voice(seed, rate=rate)
        if path.endswith("clipped.wav"):
            samples = np.clip(samples * 4, -1, 1)
        sf.write(dataset / path, samples, rate, format=container, subtype=subtype)
    audio = dataset / "audio"
    (audio / "empty.wav").write_bytes(b"")
    sf.write(audio / "full.wav", voice(50), RATE, subtype="PCM_16")
    whole = (audio / "full.wav").read_bytes()
    (audio / "truncated.wav").write_bytes(whole[: len(whole) // 2])
    (audio / "full.wav").unlink()
    sf.write(audio / "corrupt.flac", voice(51), RATE, subtype="PCM_16")
    damaged = bytearray((audio / "corrupt.flac").read_bytes())
    for offset in range(200, len(damaged), 40):
        damaged[offset] ^= 0xFF
    (audio / "corrupt.flac").write_bytes(bytes(damaged))
    (audio / "notes.wav").write_text("patient notes, not a recording\n" * 20)
    sf.write(audio / "silent.wav", np.zeros(2 * RATE, dtype=np.float32), RATE, subtype="PCM_16")
    with_nan, with_inf = voice(52), voice(53)
    with_nan[100] = np.nan
    with_inf[-5] = np.inf
    sf.write(audio / "nan.wav", with_nan, RATE, subtype="FLOAT")
    sf.write(audio / "inf.wav", with_inf, RATE, subtype="FLOAT")
    sf.write(audio / "short.wav", voice(54, seconds=0.3), RATE, subtype="PCM_16")
    sf.write(audio / "lowrate.wav", voice(55, rate=4000), 4000, subtype="PCM_16")
    for name, seed in (("typo.wav", 56), ("nolabel.wav", 57), ("conflict_a.wav", 58), ("conflict_b.wav", 59),
                       ("leak_te_p2.wav", 60), ("holdout.wav", 61), ("extra.wav", 62)):  # fmt: skip
        sf.write(audio / name, voice(seed), RATE, subtype="PCM_16")
    (audio / "tr_p1_copy.wav").write_bytes((dataset / "audio/tr_p1.wav").read_bytes())
    (audio / "tr_p2_in_test.flac").write_bytes((dataset / "audio/tr_p2.flac").read_bytes())
    sf.write(root / "outside.wav", voice(63), RATE, subtype="PCM_16")
    os.symlink(root / "outside.wav", audio / "link_out.wav")

    lines = ["file;class;speaker_id;split;sexo;idade"]
    lines += [f"{p};{label};{spk};{split};F;{40 + i}" for i, (p, label, spk, split, _) in enumerate(GOOD + BAD)]
    lines.insert(5, MALFORMED_LINE)
    (dataset / "manifest.csv").write_bytes(("\r\n".join(lines) + "\r\n").encode("latin-1"))

    noise = root / "noise"
    noise.mkdir()
    for number in range(2):
        sf.write(noise / f"ward_{number}.wav", voice(70 + number, seconds=2.0), 16000, subtype="PCM_16")
    (noise / "broken.wav").write_text("not noise")
    (noise / "noise_data.csv").write_text("path_wav\nward_0.wav\nward_1.wav\nbroken.wav\nmissing.wav\n")
    return dataset


def corpus_config(root: Path, *overrides: str):
    return compose_config(
        [
            "data=manifest",
            f"data.root={root / 'dataset'}",
            f"data.noise_root={root / 'noise'}",
            "data.split.strategy=given",
            "data.split.on_leak=drop",
            "data.max_quarantine_fraction=1.0",
            "data.num_workers=0",
            *overrides,
        ]
    ).data


@pytest.fixture(autouse=True)
def salt_from_the_environment(monkeypatch):
    """Real-data layouts need a secret salt (spira.data.privacy), as a user sets it."""
    monkeypatch.setenv("SPIRA_SALT", SALT)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    write_corpus(root)
    return root


@pytest.fixture(scope="module")
def prepared(corpus: Path):
    os.environ["SPIRA_SALT"] = SALT
    try:
        result = prepare_dataset(prepare_settings(corpus_config(corpus)), corpus / "prepared", corpus / "quarantine")
    finally:
        del os.environ["SPIRA_SALT"]
    report = pd.read_csv(corpus / "quarantine" / QUARANTINE_FILE, keep_default_na=False)
    return result, report


def test_every_bad_input_is_quarantined_under_its_reason(prepared):
    result, report = prepared
    quarantined = report[(report["set"] == "dataset") & (report["action"] == "quarantined")]
    by_path = quarantined.groupby("path")["reason"].apply(sorted).to_dict()
    expected = {}
    for path, _, _, _, reason in BAD:
        shown = "<outside data.root>/hosts.wav" if path.startswith("/") else path
        expected.setdefault(shown, []).append(reason)
    expected["audio/extra.wav"] = ["malformed_row"]
    assert by_path == {path: sorted(reasons) for path, reasons in expected.items()}
    assert (quarantined["message"].str.len() > 10).all()
    # The malformed row is reported at its line of the manifest (header is line 1).
    assert quarantined.loc[quarantined["reason"] == "malformed_row", "line"].tolist() == [6]


def test_every_good_file_is_accepted_and_rows_in_equal_accepted_plus_quarantined(prepared, corpus: Path):
    result, report = prepared
    manifest = result.manifest
    assert sorted(manifest["file_id"]) == sorted(salted_id(path, SALT) for path, *_ in GOOD)
    counts = result.report["dataset"]
    assert counts["rows_in"] == len(GOOD) + len(BAD) + 1
    assert counts["accepted"] + counts["quarantined"] == counts["rows_in"]
    assert counts["accepted"] == len(manifest)
    assert counts["quarantined"] == int((report["action"] == "quarantined").sum() - (report["set"] == "noise").sum())
    assert sum(counts["by_reason"].values()) == counts["quarantined"]
    # Prepared audio for exactly the accepted files.
    assert sorted(p.stem for p in (corpus / "prepared" / "audio").iterdir()) == sorted(manifest["file_id"])


def test_given_splits_labels_and_columns_are_mapped(prepared):
    manifest = prepared[0].manifest.set_index("file_id")
    for path, label, speaker, split, _ in GOOD:
        row = manifest.loc[salted_id(path, SALT)]
        assert row["label"] == (1 if label.lower() in ("patient", "1", "true", "positive", "1.0") else 0), path
        assert row["split"] == {"eval": "val", "validation": "val", "teste": "test"}.get(split, split), path
        if speaker:
            assert row["speaker_id"] == salted_id(speaker, SALT)
        assert row["sex"] == "F"
        assert row["source_sample_rate"] == GOOD_WRITES[path][2]
        assert row["source_format"] == GOOD_WRITES[path][0], path
    assert manifest.groupby("speaker_id")["split"].nunique().max() == 1
    assert (manifest.groupby("split")["label"].nunique() == 2).all()


def test_clipping_and_missing_speaker_are_warnings_not_quarantine(prepared):
    result, report = prepared
    warnings = report[report["action"] == "warning"].set_index("path")["reason"].to_dict()
    assert warnings == {"audio/tr_clipped.wav": "clipping", "audio/tr_anonymous.wav": "missing_speaker_id"}
    assert result.report["dataset"]["warnings"] == {"clipping": 1, "missing_speaker_id": 1}


def test_noise_set_goes_through_the_same_validation(prepared):
    result, report = prepared
    noise = report[report["set"] == "noise"].set_index("path")["reason"].to_dict()
    assert noise == {"broken.wav": "not_audio", "missing.wav": "missing_file"}
    assert len(result.noise) == 2
    assert result.report["noise"]["rows_in"] == 4


def test_no_raw_speaker_id_or_absolute_path_in_any_output(prepared, corpus: Path):
    for folder in ("prepared", "quarantine"):
        for path in (corpus / folder).rglob("*"):
            assert not any(s.lower() in path.name.lower() for s in RAW_SPEAKERS), path
            if path.suffix in (".csv", ".json"):
                text = path.read_text()
                assert not any(s in text for s in RAW_SPEAKERS), path
                assert str(corpus) not in text, path
    manifest_columns = set(prepared[0].manifest.columns)
    assert not manifest_columns & {"idade_raw", "speaker", "file", "note"}


def test_summary_table_counts_reasons(prepared):
    table = format_report_table(prepared[0].report)
    assert "rows in      37" in table
    assert "corrupt_audio" in table and "path_outside_root" in table


def test_too_much_quarantined_fails_after_writing_the_reports_with_the_cause(corpus: Path, tmp_path: Path):
    data = corpus_config(corpus, "data.max_quarantine_fraction=0.2")
    with pytest.raises(PrepareError, match=r"23 of 37 rows quarantined \(62\.2%\), more than data.max_quarantine_fraction=0.2"):
        prepare_dataset(prepare_settings(data), tmp_path / "prepared", tmp_path / "quarantine")
    summary = json.loads((tmp_path / "quarantine" / QUARANTINE_SUMMARY_FILE).read_text())
    assert summary["passed"] is False and "max_quarantine_fraction" in summary["failures"][0]
    assert len(pd.read_csv(tmp_path / "quarantine" / QUARANTINE_FILE)) > 20


def test_leak_between_given_splits_fails_by_default(corpus: Path, tmp_path: Path):
    data = corpus_config(corpus, "data.split.on_leak=fail")
    with pytest.raises(PrepareError, match=r"leakage between the given splits: 1 file\(s\) with audio identical .* 1 file\(s\) of speakers"):
        prepare_dataset(prepare_settings(data), tmp_path / "p", tmp_path / "q")


def test_a_split_without_a_class_fails_and_says_which(tmp_path: Path):
    dataset = tmp_path / "dataset"
    (dataset / "audio").mkdir(parents=True)
    rows = ["file,label,speaker"]
    for number, (split, label) in enumerate([("train", 1), ("train", 0), ("val", 1), ("val", 0), ("test", 0), ("test", 0)]):
        sf.write(dataset / f"audio/{number}.wav", voice(number), RATE, subtype="PCM_16")
        rows.append(f"audio/{number}.wav,{label},s{number},{split}")
    (dataset / "manifest.csv").write_text("file,label,speaker,split\n" + "\n".join(rows[1:]) + "\n")
    data = compose_config(["data=manifest", f"data.root={dataset}", "data.split.strategy=given"]).data
    with pytest.raises(PrepareError, match="split 'test' has no patient files"):
        prepare_dataset(prepare_settings(data), tmp_path / "p", tmp_path / "q")


def test_without_speaker_ids_every_file_is_its_own_speaker_and_the_run_says_so(tmp_path: Path, caplog):
    dataset = tmp_path / "dataset"
    (dataset / "audio").mkdir(parents=True)
    lines = ["path\tdiagnosis"]
    for number in range(12):
        sf.write(dataset / f"audio/{number}.flac", voice(number), RATE, subtype="PCM_16")
        lines.append(f"audio/{number}.flac\t{number % 2}")
    (dataset / "recordings.tsv").write_text("\n".join(lines) + "\n")
    # data.split.seed=27: the hash split that gives these 12 speakers both classes in every split.
    data = compose_config(["data=manifest", f"data.root={dataset}", "data.manifests.all=recordings.tsv", "data.split.seed=27"]).data
    with caplog.at_level(logging.WARNING):
        result = prepare_dataset(prepare_settings(data), tmp_path / "p", tmp_path / "q")
    assert "NO SPEAKER IDS" in caplog.text
    assert result.report["speaker_ids_given"] is False
    assert "every file counts as its own speaker" in format_report_table(result.report)
    assert result.manifest["speaker_id"].nunique() == 12
    assert set(result.manifest["split"]) == {"train", "val", "test"}
    assert len(result.noise) == 0


def test_parallel_workers_give_byte_identical_outputs(tmp_path: Path, monkeypatch):
    dataset = tmp_path / "dataset"
    (dataset / "audio").mkdir(parents=True)
    lines = ["file_path,class,speaker_id"]
    for number in range(12):
        sf.write(dataset / f"audio/{number}.wav", voice(number, rate=44100), 44100, subtype="PCM_16")
        lines.append(f"audio/{number}.wav,{number % 2},s{number}")
    (dataset / "manifest.csv").write_text("\n".join(lines) + "\n")
    # Twelve files are below the pool's threshold: lower it so the workers run.
    monkeypatch.setattr(prepare_module, "ordered_map", partial(ordered_map, min_items=1))
    outputs = {}
    for workers in (0, 2):
        out = tmp_path / f"w{workers}"
        # seed 27: both classes in every split
        data = compose_config(["data=manifest", f"data.root={dataset}", f"data.num_workers={workers}", "data.split.seed=27"]).data
        prepare_dataset(prepare_settings(data), out / "p", out / "q")
        outputs[workers] = {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    assert len(outputs[0]) == 12 + 5
    assert outputs[0] == outputs[2]


def test_a_noise_split_column_holds_out_the_recordings_it_names(tmp_path: Path):
    dataset = tmp_path / "dataset"
    (dataset / "audio").mkdir(parents=True)
    (dataset / "noise").mkdir()
    rows = []
    for number, (split, label) in enumerate([(s, label) for s in ("train", "val", "test") for label in (1, 0)]):
        sf.write(dataset / f"audio/{number}.wav", voice(number), RATE, subtype="PCM_16")
        rows.append(f"audio/{number}.wav,{label},s{number},{split}")
    (dataset / "manifest.csv").write_text("file,label,speaker,split\n" + "\n".join(rows) + "\n")
    cells = ["train", "treino", "eval", "teste", "ward-b"]
    for number in range(len(cells)):
        # Recording n lasts 2 + n seconds: its prepared length says which it is.
        sf.write(dataset / f"noise/w{number}.wav", voice(50 + number, seconds=2.0 + number), RATE, subtype="PCM_16")
    (dataset / "noise_data.csv").write_text("path_wav,ward_split\n" + "".join(f"noise/w{n},{cell}\n".replace(",", ".wav,", 1) for n, cell in enumerate(cells)))
    overrides = ["data=manifest", f"data.root={dataset}", "data.split.strategy=given", "data.noise_split.column=ward_split"]
    result = prepare_dataset(prepare_settings(compose_config(overrides).data), tmp_path / "p", tmp_path / "q")
    # Each recording in the split its cell names (read as data.split.names), none by hash.
    splits = {round(n_samples / 16000) - 2: split for n_samples, split in zip(result.noise["n_samples"], result.noise["split"])}
    assert splits == {0: "train", 1: "train", 2: "val", 3: "test"}
    quarantine = pd.read_csv(tmp_path / "q" / QUARANTINE_FILE)
    unknown = quarantine[(quarantine["set"] == "noise") & (quarantine["reason"] == "unknown_split")]
    assert len(unknown) == 1 and "'ward-b' is not in data.split.names" in unknown["message"].iloc[0]

    missing = [*overrides[:-1], "data.noise_split.column=ward"]
    with pytest.raises(PrepareError, match=r"noise_data.csv: no split column 'ward' \(data.noise_split.column\)"):
        prepare_dataset(prepare_settings(compose_config(missing).data), tmp_path / "p2", tmp_path / "q2")
