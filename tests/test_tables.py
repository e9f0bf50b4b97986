"""Metadata tables as spreadsheets export them: BOM, ';', CRLF, Latin-1, TSV."""

from __future__ import annotations

from pathlib import Path

import pytest

from spira.data.tables import read_table

ROWS = [("file_path", "class", "sexo"), ("áudio/joão_1.wav", "1", "F"), ("áudio/maria 2.wav", "0", "M")]


def encode(delimiter: str, newline: str, encoding: str, bom: bool) -> bytes:
    text = newline.join(delimiter.join(row) for row in ROWS) + newline
    return (b"\xef\xbb\xbf" if bom else b"") + text.encode(encoding)


@pytest.mark.parametrize(
    "delimiter,newline,encoding,bom,detected",
    [
        (",", "\n", "utf-8", False, "utf-8"),
        (",", "\r\n", "utf-8", True, "utf-8-sig"),
        (";", "\r\n", "cp1252", False, "cp1252"),
        (";", "\n", "latin-1", False, "cp1252"),
        ("\t", "\n", "utf-8", False, "utf-8"),
        ("|", "\r", "utf-8", True, "utf-8-sig"),
    ],
    ids=["plain", "bom-crlf", "semicolon-windows1252", "semicolon-latin1", "tsv", "pipe-cr"],
)
def test_every_dialect_reads_to_the_same_rows(tmp_path: Path, delimiter, newline, encoding, bom, detected):
    path = tmp_path / "metadata.csv"
    path.write_bytes(encode(delimiter, newline, encoding, bom))
    table = read_table(path)
    assert table.header == ROWS[0]
    assert [row.fields for row in table.rows] == ROWS[1:]
    assert [row.line for row in table.rows] == [2, 3]
    assert (table.delimiter, table.encoding) == (delimiter, detected)
    assert table.column(["sex", "sexo"]) == "sexo"
    assert table.column("CLASS") == "class"
    assert table.column(["speaker_id"]) is None


def test_quoted_fields_keep_delimiters_and_blank_lines_are_not_rows(tmp_path: Path):
    path = tmp_path / "m.csv"
    path.write_text('file,label,note\n"a,b.wav",1,"said ""hi"""\n\n  \nc.wav,0,\n,,\n', encoding="utf-8")
    table = read_table(path)
    assert [row.fields for row in table.rows] == [("a,b.wav", "1", 'said "hi"'), ("c.wav", "0", ""), ("", "", "")]
    assert [row.line for row in table.rows] == [2, 5, 6]
