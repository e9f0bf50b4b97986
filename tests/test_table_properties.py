"""Property-based tests of the table reader and label parsing: any byte string as a manifest
yields rows or a clear error, never a crash or a lost row."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf

from spira.config import compose_config
from spira.data.rows import PrepareError, label_lookup, normalise_token, read_dataset_rows
from spira.data.tables import DELIMITERS, read_table
from spira.pipeline.data import prepare_settings

PROPERTY_SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
MANIFEST = "manifest.csv"

# Cells as people type them: no delimiter, quote or line break, no surrounding blanks.
cell = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp"), blacklist_characters=',;\t|"'), max_size=12).map(str.strip)


@pytest.fixture(scope="module")
def manifest_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("manifest")


@pytest.fixture(scope="module")
def data_config(manifest_dir: Path):
    data = compose_config(["data=manifest", f"data.root={manifest_dir}", f"data.manifests.all={MANIFEST}"]).data
    OmegaConf.set_readonly(data, True)
    return data


@PROPERTY_SETTINGS
@given(raw=st.binary(max_size=400))
@example(raw=b"\xff\xfea")  # a UTF-16 byte-order mark, then an odd byte count
@example(raw=b"file,label\n\x00,1\n")
@example(raw=b'file,label\n"unclosed,1\n')
@example(raw=b"file,label\n" + b"a" * 140_000 + b",1\n")  # over the csv module's field limit
def test_any_bytes_read_as_a_table_or_fail_with_a_clear_error(manifest_dir, raw):
    path = manifest_dir / MANIFEST
    path.write_bytes(raw)
    try:
        table = read_table(path)
    except ValueError as error:
        assert str(path) in str(error)
        return
    assert all(isinstance(field, str) for row in table.rows for field in row.fields)
    lines = [row.line for row in table.rows]
    assert lines == sorted(lines) and len(set(lines)) == len(lines)


@PROPERTY_SETTINGS
@given(body=st.binary(max_size=400))
def test_every_row_of_any_manifest_body_becomes_an_entry_accepted_or_quarantined(manifest_dir, data_config, body):
    path = manifest_dir / MANIFEST
    path.write_bytes(b"file,label,speaker_id\n" + body)
    try:
        table = read_table(path)
        entries, manifests, _ = read_dataset_rows(prepare_settings(data_config), salt="test")
    except (ValueError, PrepareError) as error:
        assert str(path) in str(error)
        return
    assert len(entries) == len(table.rows) == manifests[0]["rows"]
    for entry in entries:
        assert entry.accepted == (entry.reason is None)
        if entry.accepted:
            assert entry.label in (0, 1) and entry.raw_path
        else:
            assert entry.message


@PROPERTY_SETTINGS
@given(
    header=st.lists(cell.filter(bool), min_size=1, max_size=5, unique=True),
    data=st.data(),
    delimiter=st.sampled_from(DELIMITERS),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "cp1252", "latin-1"]),
    newline=st.sampled_from(["\n", "\r\n", "\r"]),
)
def test_a_table_written_in_any_dialect_reads_back_row_for_row(manifest_dir, header, data, delimiter, encoding, newline):
    rows = data.draw(st.lists(st.lists(cell, min_size=len(header), max_size=len(header)).filter(any), max_size=8))
    text = newline.join(delimiter.join(fields) for fields in [header, *rows]) + newline
    try:
        raw = text.encode(encoding)
    except UnicodeEncodeError:
        return  # not writable in that encoding: no one can export it so
    path = manifest_dir / MANIFEST
    path.write_bytes(raw)
    table = read_table(path)
    assert table.header == tuple(header)
    assert [list(row.fields) for row in table.rows] == rows


@given(number=st.integers(min_value=-(10**15), max_value=10**15))
def test_integral_labels_agree_however_they_are_written(number):
    assert normalise_token(number) == normalise_token(str(number)) == normalise_token(f" {number}.0 ") == str(number)


@given(text=st.text(max_size=30))
def test_any_label_cell_normalises_without_error_and_idempotently(text):
    token = normalise_token(text)
    assert token == token.strip().lower() or token.lstrip("-").isdigit()
    assert normalise_token(token) == token


@given(patient=st.lists(st.text(max_size=8), min_size=1, max_size=4), control=st.lists(st.text(max_size=8), min_size=1, max_size=4))
def test_label_lookup_maps_each_listed_value_or_names_the_overlap(patient, control):
    labels = {"patient": patient, "control": control}
    overlap = {normalise_token(v) for v in patient} & {normalise_token(v) for v in control}
    if overlap:
        with pytest.raises(PrepareError, match="listed as both patient and control"):
            label_lookup(labels)
        return
    lookup = label_lookup(labels)
    assert all(lookup[normalise_token(v)] == 1 for v in patient) and all(lookup[normalise_token(v)] == 0 for v in control)
