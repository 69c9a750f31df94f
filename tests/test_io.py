"""Ticket I/O: every input line ends as a ticket or a reject naming the line and the problem."""

import json

import pytest

from router.io import Reject, TicketFileError, TicketIn, done_ids, load_tickets, read_tickets, write_xlsx


def test_jsonl_bad_lines_become_rejects_with_line_numbers(tmp_path, catalog):
    good = {"id": "a", "text": "楼上装修噪音太大", "channel": "phone"}
    lines = [
        json.dumps(good, ensure_ascii=False).encode(),
        b'{"id": "b", "text": "broken',                          # malformed JSON
        b'{"id": "c", "text": "\xe4\xb8 bad utf8"}',            # bad UTF-8
        b'{"id": "d"}',                                          # missing text
        b'{"id": "e", "text": "   "}',                           # empty text
        json.dumps({"id": "a", "text": "again"}).encode(),       # duplicate id
        json.dumps({"id": "f", "text": "x", "label": "no-such-dept"}).encode(),
        b"[1, 2]",                                               # not an object
        b"",                                                     # blank: ignored
        json.dumps({"id": 7, "text": "停水了", "label": "市公安局"}, ensure_ascii=False).encode(),
        json.dumps({"id": "g", "text": "t", "received_at": "yesterday"}).encode(),
    ]
    p = tmp_path / "t.jsonl"
    p.write_bytes(b"\n".join(lines) + b"\n")
    items = list(read_tickets(p, catalog))
    ok = [i for i in items if isinstance(i, TicketIn)]
    bad = {r.line: r.reason for r in items if isinstance(r, Reject)}
    assert [t.id for t in ok] == ["a", "7"]
    assert ok[1].label == "police"                               # name mapped to the id
    assert set(bad) == {2, 3, 4, 5, 6, 7, 8, 11}
    assert "malformed JSON" in bad[2]
    assert "UTF-8" in bad[3]
    assert "missing" in bad[4] and "empty" in bad[5]
    assert "duplicate id 'a'" in bad[6]
    assert "unknown department 'no-such-dept'" in bad[7]
    assert "JSON object" in bad[8]
    assert "received_at" in bad[11]
    assert len(ok) + len(bad) == sum(1 for x in lines if x.strip())


def test_csv_with_chinese_headers_and_bad_row(tmp_path, catalog):
    p = tmp_path / "t.csv"
    p.write_bytes("工单编号,诉求内容,承办部门\n1,路灯不亮,\n2,,\n3,\"多行\n内容\",市公安局\n".encode("utf-8-sig")
                  + b"4,\xff\xfe,\n")
    ok, bad = load_tickets(p, catalog)
    assert [(t.id, t.text, t.label) for t in ok] == [("1", "路灯不亮", None), ("3", "多行\n内容", "police")]
    assert [r.line for r in bad] == [3, 6]
    assert "empty" in bad[0].reason and "UTF-8" in bad[1].reason


def test_xlsx_roundtrip_and_broken_workbook(tmp_path, catalog):
    p = tmp_path / "t.xlsx"
    write_xlsx(p, [{"id": 1, "text": "小区停电了", "channel": "phone"}, {"id": 2, "text": None}])
    ok, bad = load_tickets(p, catalog)
    assert [(t.id, t.text) for t in ok] == [("1", "小区停电了")]
    assert bad[0].line == 3 and "text" in bad[0].reason
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(p.read_bytes()[:200])
    with pytest.raises(TicketFileError, match="broken.xlsx: not a readable Excel workbook"):
        load_tickets(broken, catalog)


def test_unknown_suffix_and_missing_file(tmp_path):
    with pytest.raises(TicketFileError, match="unknown file type"):
        list(read_tickets(tmp_path / "t.txt"))
    with pytest.raises(TicketFileError, match="no such file"):
        list(read_tickets(tmp_path / "none.jsonl"))


def test_done_ids_drops_a_torn_last_line(tmp_path):
    p = tmp_path / "out.jsonl"
    p.write_text('{"id": "a"}\n{"id": "b"}\n{"id": "c", "dep')
    assert done_ids(p) == {"a", "b"}
    assert p.read_text() == '{"id": "a"}\n{"id": "b"}\n'
