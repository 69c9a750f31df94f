"""Crafted workbooks are read in bounded time and memory: limits on size, columns and cell length."""

import zipfile

import openpyxl
import pytest

from router import io
from router.io import TicketFileError, load_tickets


def test_a_cell_in_column_xfd_rejects_its_row_without_padding_every_row(tmp_path):
    wb = openpyxl.Workbook(write_only=True)
    ws = wb.create_sheet()
    ws.append(["id", "text"])
    for i in range(2000):
        ws.append([f"t{i}", "路灯坏了"] + [None] * 16381 + (["x"] if i % 2 else [None]))
    wb.save(tmp_path / "xfd.xlsx")
    ok, bad = load_tickets(tmp_path / "xfd.xlsx")
    assert len(ok) == 1000 and len(bad) == 1000
    assert bad[0].line == 3 and "a value in column 16384 but the header has 2 columns" in bad[0].reason


def test_header_over_the_column_limit_refuses_the_workbook(tmp_path):
    wb = openpyxl.Workbook(write_only=True)
    ws = wb.create_sheet()
    ws.append(["id", "text"] + [None] * 2000 + ["note"])
    ws.append(["t1", "路灯坏了"])
    wb.save(tmp_path / "wide.xlsx")
    with pytest.raises(TicketFileError, match="over the limit of 1000 columns"):
        load_tickets(tmp_path / "wide.xlsx")


def test_a_cell_longer_than_excel_allows_is_rejected_and_a_text_bomb_refused(tmp_path, monkeypatch):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["id", "text"])
    ws.append(["t1", "路灯坏了"])
    ws.append(["t2", "很" * 40_000])
    wb.save(tmp_path / "cut.xlsx")                          # openpyxl cuts a cell at 32,767 when writing:
    with zipfile.ZipFile(tmp_path / "cut.xlsx") as z, zipfile.ZipFile(tmp_path / "long.xlsx", "w") as out:
        for part in z.infolist():                           # a crafted file holds 40,000
            data = z.read(part)
            out.writestr(part, data.replace(("很" * 32767).encode(), ("很" * 40_000).encode()))
    ok, bad = load_tickets(tmp_path / "long.xlsx")
    assert [t.id for t in ok] == ["t1"] and bad[0].line == 3 and "longer than 32,767 characters" in bad[0].reason
    monkeypatch.setattr(io, "XLSX_MAX_BYTES", 64 << 10)        # a text bomb, scaled down
    with pytest.raises(TicketFileError, match="over the limits"):
        load_tickets(tmp_path / "long.xlsx")
