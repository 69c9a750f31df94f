"""Ticket I/O: every input line ends as a ticket or a reject naming the line and the problem."""

import base64
import csv
import json
import re
import zipfile

import pytest

from router.io import (Reject, RoutedWriter, TicketFileError, TicketIn, TicketReader, done_ids, load_tickets,
                       read_tickets, write_xlsx)


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


def _items(path, **kw):
    items = list(read_tickets(path, **kw))
    return [i for i in items if isinstance(i, TicketIn)], {r.line: r for r in items if isinstance(r, Reject)}


def test_gbk_and_bom_are_detected_and_rejects_keep_the_line(tmp_path):
    rows = "工单编号,诉求内容,渠道\n1,小区停水三天了,电话\n2,路灯不亮,网站\n"
    gbk = tmp_path / "gbk.csv"
    gbk.write_bytes(rows.encode("gbk") + b"3,\x81\x20bad,x\n")  # 0x81 0x20 is not GB18030
    reader = TicketReader(gbk)
    items = list(reader)
    assert reader.encoding == "gb18030"
    assert [(t.id, t.text, t.channel) for t in items[:2]] == [("1", "小区停水三天了", "电话"), ("2", "路灯不亮", "网站")]
    rej = items[2].as_dict()
    assert rej["line"] == 4 and "not valid GB18030" in rej["reason"]
    assert base64.b64decode(rej["raw_base64"]) == b"3,\x81\x20bad,x\n"          # the exact bytes
    for enc in ("utf-8", "utf-8-sig"):
        p = tmp_path / f"{enc}.csv"
        p.write_bytes(rows.encode(enc))
        ok, bad = _items(p)
        assert [t.id for t in ok] == ["1", "2"] and not bad and "工单编号" in ok[0].row
    ok, _ = _items(gbk, encoding="gbk")                                            # chosen
    assert ok[0].text == "小区停水三天了"
    with pytest.raises(TicketFileError, match="header row.*not valid UTF-8.*try --encoding"):
        list(read_tickets(gbk, encoding="utf-8"))                                  # chosen wrongly
    with pytest.raises(TicketFileError, match="unknown encoding"):
        list(read_tickets(gbk, encoding="klingon"))


def test_jsonl_poison_lines_are_rejected_or_cleaned(tmp_path):
    deep = '{"id": "deep", "text": "x", "extra": ' + "[" * 100000 + "]" * 100000 + "}"
    lines = [
        '{"id": "s1", "text": "bad \\ud800 text"}',                    # lone surrogate in text
        '{"id": "s2\\udfff", "text": "ok"}',                           # ... in the id
        '{"id": "y1", "text": "t", "received_at": "0001-01-01T00:00:00"}',
        '{"id": "y2", "text": "t", "received_at": "9999-12-31T23:59:59+08:00"}',
        deep,
        '{"id": "n1", "text": "NUL\\u0000 inside", "title": "a\\u0000b"}',  # NUL removed
        '{"id": "n2\\u0000", "text": "t"}',                            # NUL in an id: rejected
        json.dumps({"id": "big", "text": "长" * (1 << 20)}, ensure_ascii=False),  # 1 M characters: routed
        '{"id": true, "text": "t"}',
        '{"id": "ok", "text": "正常工单", "received_at": "2024/05/01 08:00"}',
    ]
    p = tmp_path / "p.jsonl"
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    ok, bad = _items(p)
    assert [t.id for t in ok] == ["n1", "big", "ok"]
    assert ok[0].text == "NUL inside" and ok[0].title == "ab"
    assert len(ok[1].text) == 1 << 20
    assert set(bad) == {1, 2, 3, 4, 5, 7, 9}
    assert "surrogate" in bad[1].reason and "surrogate" in bad[2].reason
    assert "outside the years" in bad[3].reason and "outside the years" in bad[4].reason
    assert "nested too deeply" in bad[5].reason
    assert "control characters" in bad[7].reason and "must be a string" in bad[9].reason
    assert bad[1].raw == lines[0]                                              # the line as it was


CSV_HEAD = "id,text,channel\n"


def test_csv_unbalanced_quotes_never_swallow_the_records_after_them(tmp_path):
    body = ['1,"opened and never closed,phone', "2,second,phone", "3,third,web", "4,fourth,web",
            '5,"a real',  'multi-line text",phone',                      # a legitimate quoted line break
            '6,lone " quote inside,phone', '7,"closed"garbage,phone', "8,ab\rcd,phone",
            "9," + "x" * 200_000 + ",phone", '10,"' + "y" * (1 << 20) + '",web', '11,"last, unclosed']
    p = tmp_path / "q.csv"
    p.write_text(CSV_HEAD + "\n".join(body) + "\n", encoding="utf-8", newline="")
    ok, bad = _items(p)
    assert [t.id for t in ok] == ["2", "3", "4", "5", "6", "9", "10"]
    assert ok[3].text == "a real\nmulti-line text" and ok[3].line == 6
    assert ok[4].text == 'lone " quote inside' and len(ok[6].text) == 1 << 20
    assert set(bad) == {2, 9, 10, 13}
    assert "not closed before line 3" in bad[2].reason and bad[2].raw == body[0]
    assert "malformed CSV" in bad[9].reason and "bare CR" in bad[10].reason
    assert "never closed" in bad[13].reason


def test_csv_header_without_an_id_column_is_a_clear_error(tmp_path):
    p = tmp_path / "h.csv"
    p.write_text("编码,诉求内容\n1,x\n", encoding="utf-8")
    with pytest.raises(TicketFileError, match="no 'id' column"):
        list(read_tickets(p))


def _rezip(src, dst, part, edit):
    with zipfile.ZipFile(src) as z:
        files = {n: z.read(n) for n in z.namelist()}
    files[part] = edit(files[part].decode()).encode()
    with zipfile.ZipFile(dst, "w") as z:
        for n, b in files.items():
            z.writestr(n, b)
    return dst


def _shared_strings(src, dst, broken=False):
    """openpyxl writes inline strings; Excel writes a shared-strings part: rewrite `src` to that layout."""
    strings = []

    def ref(m):
        strings.append(m.group(2))
        return f'<c r="{m.group(1)}" t="s"><v>{len(strings) - 1}</v></c>'

    _rezip(src, dst, "xl/worksheets/sheet1.xml",
           lambda x: re.sub(r'<c r="(\w+)" t="inlineStr"><is><t>(.*?)</t></is></c>', ref, x))
    sst = ('<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
           + "".join(f"<si><t>{x}</t></si>" for x in strings) + "</sst>")
    with zipfile.ZipFile(dst) as z:
        files = {n: z.read(n).decode() for n in z.namelist()}
    files["xl/sharedStrings.xml"] = sst[: len(sst) // 2] if broken else sst
    files["[Content_Types].xml"] = files["[Content_Types].xml"].replace("</Types>", (
        '<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.'
        'spreadsheetml.sharedStrings+xml" /></Types>'))
    files["xl/_rels/workbook.xml.rels"] = files["xl/_rels/workbook.xml.rels"].replace("</Relationships>", (
        '<Relationship Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" '
        'Target="sharedStrings.xml" Id="rId9" /></Relationships>'))
    with zipfile.ZipFile(dst, "w") as z:
        for n, b in files.items():
            z.writestr(n, b)
    return dst


def _workbook(tmp_path, n=6):
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["工单编号", "诉求内容", "数量"])
    for i in range(n):
        ws.append([i + 1, f"第{i + 1}张工单", i * 1.5])
    p = tmp_path / "w.xlsx"
    wb.save(p)
    return p


@pytest.mark.parametrize("dim", ["A1", "A1:B3"])
def test_xlsx_with_a_wrong_stored_dimension_loses_no_rows(tmp_path, dim):
    src = _workbook(tmp_path)
    p = _rezip(src, tmp_path / "d.xlsx", "xl/worksheets/sheet1.xml",
               lambda s: re.sub(r'<dimension ref="[^"]*"\s*/>', f'<dimension ref="{dim}"/>', s))
    ok, bad = _items(p)
    assert [t.id for t in ok] == [str(i) for i in range(1, 7)] and not bad


@pytest.mark.parametrize("part, edit, where", [
    ("xl/worksheets/sheet1.xml", lambda s: s.replace("</sheetData>", "<row><c>"), "damaged at row"),
    ("xl/worksheets/sheet1.xml", lambda s: re.sub(r"<v>4\.5</v>", "<v>four</v>", s), "damaged at row 5"),
])
def test_corrupt_workbook_parts_are_clear_errors(tmp_path, part, edit, where):
    p = _rezip(_workbook(tmp_path), tmp_path / "c.xlsx", part, edit)
    with pytest.raises(TicketFileError, match=where):
        list(read_tickets(p))


def test_shared_strings_read_and_a_corrupt_part_is_a_clear_error(tmp_path):
    ok, bad = _items(_shared_strings(_workbook(tmp_path), tmp_path / "s.xlsx"))
    assert [t.text for t in ok][:2] == ["第1张工单", "第2张工单"] and not bad
    with pytest.raises(TicketFileError, match="not a readable Excel workbook"):
        list(read_tickets(_shared_strings(_workbook(tmp_path), tmp_path / "b.xlsx", broken=True)))


def test_a_folder_is_a_clear_error(tmp_path):
    (tmp_path / "d.csv").mkdir()
    with pytest.raises(TicketFileError, match="is a folder"):
        list(read_tickets(tmp_path / "d.csv"))


def _routed_row(t):
    return {"id": t.id, "department": "police", "department_name": "市公安局", "confidence": 0.42,
            "queued": True, "top": [{"department": "police", "name": "市公安局", "p": 0.42}],
            "model_version": "v1"}


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_table_output_keeps_the_input_columns_and_resumes(tmp_path, fmt):
    import openpyxl

    src = tmp_path / "in.csv"
    src.write_text("工单编号,诉求内容,部门\n1,=HYPERLINK(\"http://x\"),\n2,路灯不亮,\n3,井盖丢失,\n", encoding="utf-8")
    reader = TicketReader(src)
    tickets = list(reader)
    out = tmp_path / f"routed.{fmt}"
    w = RoutedWriter(str(out))
    w.write(tickets[:2], [_routed_row(t) for t in tickets[:2]])
    w.close()                                                      # killed: only the journal exists
    assert not out.exists() and RoutedWriter(str(out), append=True).done() == {"1", "2"}
    w = RoutedWriter(str(out), append=True)
    w.write(tickets[2:], [_routed_row(t) for t in tickets[2:]])
    w.finish(reader.encoding)
    if fmt == "csv":
        rows = list(csv.reader(out.read_text(encoding="utf-8-sig").splitlines()))
    else:
        ws = openpyxl.load_workbook(out).active
        rows = [[c.value for c in r] for r in ws.iter_rows()]
        assert ws["B2"].data_type == "s"                           # text, never a formula
    assert rows[0] == ["工单编号", "诉求内容", "部门", "派单部门编号", "派单部门", "置信度", "待人工复核",
                       "候选部门", "模型版本", "入库编号", "判定依据", "地点", "属地", "协办部门建议",
                       "并单编号", "重复工单"]
    assert [str(r[0]) for r in rows[1:]] == ["1", "2", "3"]
    assert rows[2][3:10] == ["police", "市公安局", 0.42 if fmt == "xlsx" else "0.42", "是", "市公安局 0.42", "v1",
                             None if fmt == "xlsx" else ""]
    assert rows[1][1] == ("'" if fmt == "csv" else "") + '=HYPERLINK("http://x")'
    assert not (tmp_path / f"routed.{fmt}.partial.jsonl").exists()
    again = RoutedWriter(str(out), append=True)                    # --resume after a finished run
    assert again.done() == {"1", "2", "3"}
    again.finish(reader.encoding)
    n = len(out.read_text(encoding="utf-8-sig").splitlines()) if fmt == "csv" else openpyxl.load_workbook(out).active.max_row
    assert n == 4


def test_the_routed_jsonl_is_reordered_streaming(tmp_path):
    import tracemalloc

    from router.io import _urgent_first

    out = tmp_path / "routed.jsonl"
    row = {"department": "housing", "top": [{"department": "housing", "name": "市住建局", "p": 0.9}] * 3, "pad": "x" * 300}
    with open(out, "w", encoding="utf-8") as f:
        for i in range(40_000):
            f.write(json.dumps({"id": str(i)} | row | ({"department": "emergency-120"} if i % 10_000 == 9_999 else {}),
                               ensure_ascii=False) + "\n")
    size = out.stat().st_size
    tracemalloc.start()
    _urgent_first(out, tmp_path / "routed.jsonl.tmp")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    ids = [json.loads(x)["id"] for x in out.read_text(encoding="utf-8").splitlines()]
    assert ids[:4] == ["9999", "19999", "29999", "39999"] and sorted(ids, key=int) == [str(i) for i in range(40_000)]
    assert peak < size / 20 and not (tmp_path / "routed.jsonl.tmp").exists()     # never the whole file in memory
