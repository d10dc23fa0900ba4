"""CSV rows built per chunk (in the worker) and appended to ``csv/<table>.csv`` (in the parent)."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from medmesh.synthetic.output.csv_tables import HEADERS, PROJECTIONS, ReasonLookup
from medmesh.synthetic.output.files import HashedFile, WrittenFile

CSV_FOLDER = "csv"


def csv_url(table: str) -> str:
    return f"{CSV_FOLDER}/{table}.csv"


def _writer(buffer: io.StringIO) -> Any:
    return csv.writer(buffer, lineterminator="\n")


def csv_line(row: list[str]) -> str:
    """One CSV line: fields joined as they are, or quoted by the csv module when one needs it."""
    text = ",".join(row)
    if (
        text.count(",") == len(row) - 1
        and '"' not in text
        and "\n" not in text
        and "\r" not in text
    ):
        return text + "\n"
    buffer = io.StringIO()
    _writer(buffer).writerow(row)
    return buffer.getvalue()


class CsvChunk:
    """The CSV rows of a run of patients, table by table."""

    def __init__(self) -> None:
        self._rows: dict[str, list[list[str]]] = {table: [] for table in HEADERS}

    def add_patient(self, resources: Sequence[dict[str, Any]]) -> None:
        reasons = ReasonLookup(list(resources))
        for resource in resources:
            projection = PROJECTIONS.get(resource["resourceType"])
            if projection is None:
                continue
            table, rows_of = projection
            self._rows[table] += rows_of(resource, reasons)

    def tables(self) -> dict[str, tuple[bytes, int]]:
        """table -> (rows as UTF-8 CSV, number of rows)."""
        return {
            table: ("".join(map(csv_line, rows)).encode(), len(rows))
            for table, rows in self._rows.items()
        }


class CsvFolderWriter:
    """``csv/<table>.csv``: every table gets its header row first, even one that stays empty."""

    def __init__(self, root: Path) -> None:
        self._files: dict[str, HashedFile] = {}
        for table, header in HEADERS.items():
            file = HashedFile(root, csv_url(table), format="csv", type=table)
            buffer = io.StringIO()
            _writer(buffer).writerow(header)
            file.write(buffer.getvalue().encode(), 0)
            self._files[table] = file

    def write(self, tables: dict[str, tuple[bytes, int]]) -> None:
        for table, (data, rows) in tables.items():
            if rows:
                self._files[table].write(data, rows)

    def close(self) -> list[WrittenFile]:
        return [file.close() for file in self._files.values()]

    def abandon(self) -> None:
        for file in self._files.values():
            file.abandon()
