"""Reading the metadata tables people actually export: CSV or TSV, any common dialect.

Hospital exports come out of Excel and LibreOffice as often as out of code: a
UTF-8 byte-order mark, `;` as the delimiter (the default where `,` is the
decimal comma), Windows line endings, or Windows-1252 / Latin-1 text. The
dialect is detected per file and recorded in the report, so nothing depends on
how the file was saved.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

DELIMITERS = (",", ";", "\t", "|")
# Tried in order; Latin-1 decodes any byte, so it is the last resort.
ENCODINGS = ("utf-8", "cp1252", "latin-1")


@dataclass(frozen=True)
class TableRow:
    line: int  # 1-based line number in the file, for humans reading the report
    fields: tuple[str, ...]


@dataclass(frozen=True)
class Table:
    path: Path
    header: tuple[str, ...]
    rows: tuple[TableRow, ...]
    encoding: str
    delimiter: str

    def column(self, candidates: str | list[str] | tuple[str, ...] | None) -> str | None:
        """The first of `candidates` present in the header (exact, then case-insensitive)."""
        if candidates is None:
            return None
        names = [candidates] if isinstance(candidates, str) else [str(name) for name in candidates]
        for name in names:
            if name in self.header:
                return name
        lowered = {column.lower(): column for column in self.header}
        for name in names:
            if name.lower() in lowered:
                return lowered[name.lower()]
        return None


def decode_text(raw: bytes) -> tuple[str, str]:
    """Text and the encoding it was read with."""
    if raw.startswith(b"\xef\xbb\xbf"):
        return raw[3:].decode("utf-8", errors="replace"), "utf-8-sig"
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16"), "utf-16"
    for encoding in ENCODINGS:
        try:
            return raw.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    raise AssertionError("latin-1 decodes every byte string")


def detect_delimiter(header_line: str) -> str:
    """The candidate that splits the header into the most fields (`,` on a tie or none)."""
    counts = {delimiter: header_line.count(delimiter) for delimiter in DELIMITERS}
    best = max(DELIMITERS, key=lambda delimiter: counts[delimiter])
    return best if counts[best] > counts[","] else ","


def read_records(reader, path: Path):
    """The reader's records, its errors (a field over the csv module's size limit) naming the file."""
    try:
        yield from reader
    except csv.Error as error:
        raise ValueError(f"{path} line {reader.line_num}: {error}") from error


def read_table(path: str | Path) -> Table:
    """Header and rows of a CSV/TSV file as text; only blank lines are skipped.

    Raises ValueError naming the file for anything that is not such a table."""
    path = Path(path)
    try:
        text, encoding = decode_text(path.read_bytes())
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: starts with a UTF-16 byte-order mark but is not UTF-16 text ({error.reason})") from error
    first_line = next((line for line in text.splitlines() if line.strip()), "")
    delimiter = detect_delimiter(first_line)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header: tuple[str, ...] | None = None
    rows = []
    for fields in read_records(reader, path):
        if not fields or (len(fields) == 1 and not fields[0].strip()):
            continue
        cleaned = tuple(field.strip() for field in fields)
        if header is None:
            header = cleaned
        else:
            rows.append(TableRow(line=reader.line_num, fields=cleaned))
    if header is None:
        raise ValueError(f"{path}: empty table (no header line)")
    return Table(path=path, header=header, rows=tuple(rows), encoding=encoding, delimiter=delimiter)
