"""Seeded fuzz of the ticket reader and `router classify`: 246 malformed JSONL, CSV and Excel files.

The rule: whatever the bytes, every input record ends either routed (a valid one always, with its
text intact) or in the rejects file under its line number; no ticket appears that was not in the
input; no traceback; the exit code says whether anything was rejected. A damaged workbook part is a
clear error (exit 2)."""

from __future__ import annotations

import json
import random
import re
from datetime import datetime
from pathlib import Path

import openpyxl
import pytest
from typer.testing import CliRunner

from router.cli import app
from router.io import Reject, TicketFileError, TicketIn, read_tickets
from tests.conftest import SAMPLE, read_jsonl
from tests.test_io import _rezip

SEED, PER_FORMAT = 20240611, 80
TEXTS = [r["text"] for r in read_jsonl(SAMPLE / "day.jsonl")[:200]]


class Case:
    """A generated file: its records as (first line, id or None, text when valid else None)."""

    def __init__(self, path: Path):
        self.path, self.records, self.clear_error = path, [], None


def _garbage(rng) -> bytes:
    # 0xFF is invalid in UTF-8 and in GB18030 alike; no line break inside
    return b"\xff" + bytes(rng.choice([b for b in range(256) if b not in (10, 13)]) for _ in range(rng.randint(1, 40)))


def _jsonl_case(rng, path: Path, k: int) -> Case:
    case, lines, ids = Case(path), [], []
    nl = "\r\n" if rng.random() < 0.2 else "\n"

    def add(line: bytes | str, tid=None, text=None):
        lines.append(line if isinstance(line, bytes) else line.encode("utf-8"))
        case.records.append((len(lines), tid, text))

    for i in range(rng.randint(8, 14)):
        tid, text = f"j{k}-{i}", rng.choice(TEXTS)
        if rng.random() < 0.3:
            poison = rng.choice([
                lambda: json.dumps({"id": tid, "text": text})[:-5],                          # truncated JSON
                lambda: '{"id": "%s", "text": "bad \\ud83d text"}' % tid,                    # lone surrogate
                lambda: '{"id": "%s\\udc00", "text": "x"}' % tid,
                lambda: json.dumps({"id": tid, "text": text, "received_at": rng.choice(
                    ["0001-01-01T00:00:00", "9999-12-31T23:59:59+08:00", "0001-01-01", "9999-12-31 23:59"])}),
                lambda: '{"id": "%s", "text": "x", "n": %s}' % (tid, "[" * 50000 + "]" * 50000),
                lambda: json.dumps({"id": tid, "text": text + "\x00"}),                      # NUL: removed, routed
                lambda: b'{"id": "' + tid.encode() + b'", "text": "a\x00b"}',                # raw NUL: malformed
                lambda: json.dumps({"id": tid, "text": "长" * rng.choice([200_000, 400_000])}, ensure_ascii=False),
                lambda: json.dumps([tid, text]),
                lambda: json.dumps({"text": text}),
                lambda: json.dumps({"id": tid, "text": " \t "}),
                lambda: json.dumps({"id": rng.choice(ids) if ids else tid, "text": text}, ensure_ascii=False),
                lambda: _garbage(rng),
                lambda: json.dumps({"id": [tid], "text": text}),
                lambda: json.dumps({"id": tid, "text": 12345}),
                lambda: json.dumps({"id": tid, "text": text, "label": "no-such-department"}),
                lambda: "\ufeff" + json.dumps({"id": tid, "text": text}),
            ])()
            add(poison, tid)
        else:
            add(json.dumps({"id": tid, "text": text, "channel": "phone"}, ensure_ascii=False), tid, text)
            ids.append(tid)
    path.write_bytes(b"".join(x + nl.encode() for x in lines))
    return case


def _csv_case(rng, path: Path, k: int) -> Case:
    case, lines, ids = Case(path), ["工单编号,诉求内容,渠道,受理时间"], []
    encoding = rng.choice(["utf-8", "utf-8-sig", "gb18030"])

    def add(line: str | bytes, tid=None, text=None, extra: int = 0):
        lines.append(line)
        case.records.append((len(lines), tid, text))
        lines.extend([None] * extra)  # continuation lines of a multi-line record (already in `line`)

    for i in range(rng.randint(8, 14)):
        tid, text = f"c{k}-{i}", rng.choice(TEXTS).replace('"', "").replace(",", "，")
        if rng.random() < 0.3:
            kind = rng.randrange(12)
            if kind == 0:
                add(f'{tid},"{text},电话,2024-05-01 08:00', tid)                    # quote never closed
            elif kind == 1:
                add(f'{tid},{text[:5]}"{text[5:]},电话,', tid)                      # lone quote mid-field: fine
            elif kind == 2:
                add(f'{tid},"{text}"x,电话,', tid)                                   # junk after a closing quote
            elif kind == 3:
                add(f"{tid},{text[:4]}\r{text[4:]},电话,", tid)                      # bare CR
            elif kind == 4:
                add(f"{tid},{'长' * rng.choice([100_000, 200_000])},电话,", tid)     # 200-400 KB field
            elif kind == 5:
                add(f"{tid},{text},电话,2024-05-01,extra,more", tid)                 # too many columns
            elif kind == 6:
                add(f"{tid},{text}\x00,电话,", tid)                                  # NUL: removed, routed
            elif kind == 7:
                add(_garbage(rng), tid)
            elif kind == 8:
                add(f"{rng.choice(ids) if ids else tid},{text},电话,", tid)         # duplicate id
            elif kind == 9:
                add(f"{tid},{text},电话,{rng.choice(['0001-01-01', '9999-12-31T00:00:00+08:00'])}", tid)
            elif kind == 10:
                add(f",{text},电话,", tid)                                           # no id
            else:
                add(f'{tid},"{text[:6]}\n{text[6:]}",电话,', tid, (text[:6] + "\n" + text[6:]).strip(), extra=1)  # multi-line
                ids.append(tid)
        else:
            add(f"{tid},{text},电话,2024-05-01 08:{i:02d}", tid, text)
            ids.append(tid)
    nl = rng.choice(["\n", "\r\n"])
    out = b"\xef\xbb\xbf" if encoding == "utf-8-sig" else b""
    for x in lines:
        if x is not None:
            out += (x.replace("\n", nl).encode(encoding.replace("-sig", "")) if isinstance(x, str) else x) + nl.encode()
    path.write_bytes(out)
    return case


def _xlsx_case(rng, path: Path, k: int) -> Case:
    case = Case(path)
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["工单编号", "诉求内容", "受理时间", "承办部门"])
    ids = []
    row = 1
    for i in range(rng.randint(8, 14)):
        tid, text = f"x{k}-{i}", rng.choice(TEXTS)
        row += 1
        if rng.random() < 0.15:
            ws.append([])                                                           # an empty row: skipped
            row += 1
        if rng.random() < 0.3:
            ws.append(rng.choice([
                [tid, None, None, None],
                [None, text, None, None],
                [tid, text, datetime(1, 1, 1), None],
                [tid, text, "9999-12-31 23:59:59", None],
                [tid, text, None, "不存在的部门"],
                [rng.choice(ids) if ids else tid, text, None, None],
                [tid, text, None, None, "overflow", "cells"],
                [tid, 3.14, None, None],
                [tid, "=" + text, None, None],                                      # formula-looking text: routed
            ]))
            case.records.append((row, tid, None))
        else:
            ws.append([float(i) if rng.random() < 0.2 else tid, text, datetime(2024, 5, 1, 8, i), "市公安局"])
            if ws.cell(row, 1).value == float(i):
                tid = str(i)
            case.records.append((row, tid, text))
            ids.append(tid)
    wb.save(path)
    damage = rng.random()
    if damage < 0.25:   # a wrong stored dimension: every row must still be read
        _edit(path, "xl/worksheets/sheet1.xml",
              lambda s: re.sub(r'<dimension ref="[^"]*"\s*/>', f'<dimension ref="{rng.choice(["A1", "A1:B2"])}"/>', s))
    elif damage < 0.35:  # damaged sheet XML or a corrupt number: a clear file error
        _edit(path, "xl/worksheets/sheet1.xml", rng.choice([
            lambda s: s[: len(s) * 2 // 3],
            lambda s: re.sub(r'(<c r="C\d+"[^>]*><v>)[^<]*', r"\1not-a-number", s, count=1)]))
        case.clear_error = True
    return case


def _edit(path: Path, part: str, fn) -> None:
    _rezip(path, path, part, fn)


@pytest.fixture(scope="module")
def cases(tmp_path_factory) -> list[Case]:
    rng = random.Random(SEED)
    root = tmp_path_factory.mktemp("fuzz")
    out = []
    for k in range(PER_FORMAT):
        out.append(_jsonl_case(rng, root / f"f{k}.jsonl", k))
        out.append(_csv_case(rng, root / f"f{k}.csv", k))
        out.append(_xlsx_case(rng, root / f"f{k}.xlsx", k))
    # whole-file oddities: empty, header only, only garbage, BOM only, a folder
    for name, data in [("empty.csv", b""), ("head.csv", "工单编号,诉求内容\n".encode()), ("bom.jsonl", b"\xef\xbb\xbf"),
                       ("junk.jsonl", b"\xff\xfe\x00\n\x00\x00\n"), ("blank.jsonl", b"\n\n  \n")]:
        (root / name).write_bytes(data)
        c = Case(root / name)
        if name == "junk.jsonl":
            c.records = [(1, None, None), (2, None, None)]
        out.append(c)
    (root / "dir.jsonl").mkdir()
    c = Case(root / "dir.jsonl")
    c.clear_error = True
    out.append(c)
    return out


def check(case: Case, routed: dict[str, str | None], rejected: set[int]) -> None:
    """`routed`: id -> text (None: not known, from the output file)."""
    lines = {line for line, _, _ in case.records}
    ids = {tid for _, tid, _ in case.records if tid}
    assert set(routed) <= ids, f"{case.path.name}: tickets not in the input {set(routed) - ids}"
    assert rejected <= lines, f"{case.path.name}: rejects for lines that start no record {rejected - lines}"
    for line, tid, text in case.records:
        if text is not None:   # a valid record: routed, text intact
            assert routed.get(tid) in (text, None) and tid in routed, f"{case.path.name}: line {line} ({tid}) lost"
        else:
            assert tid in routed or line in rejected, f"{case.path.name}: line {line} ({tid}) in neither file"
    assert len(routed) + len(rejected) == len(case.records), case.path.name


def test_reader_accounts_for_every_record(cases):
    assert len([c for c in cases if c.records]) >= 240
    for case in cases:
        try:
            items = list(read_tickets(case.path))
        except TicketFileError as e:
            assert case.clear_error, f"{case.path.name}: {e}"
            assert str(case.path.name) in str(e)
            continue
        assert not case.clear_error, f"{case.path.name}: damage went unnoticed"
        routed = {t.id: t.text for t in items if isinstance(t, TicketIn)}
        rejected = [r.line for r in items if isinstance(r, Reject)]
        assert len(set(rejected)) == len(rejected), case.path.name
        assert all(isinstance(r.reason, str) and r.reason for r in items if isinstance(r, Reject))
        check(case, routed, set(rejected))


@pytest.fixture(scope="module")
def small_model(tmp_path_factory):
    """A light baseline trained once on 600 sample tickets, in a throwaway home."""
    import os

    home = tmp_path_factory.mktemp("fuzzhome") / "home"
    toml = home.parent / "router.toml"
    toml.write_text("[baseline]\nC = 2.0\nngram_max = 2\nmax_features = 20000\n")
    env = {"ROUTER_PATHS__HOME": str(home), "ROUTER_CONFIG": str(toml)}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    hist = tmp_path_factory.mktemp("hist") / "h.jsonl"
    hist.write_text("".join(x + "\n" for x in (SAMPLE / "history.jsonl").read_text(encoding="utf-8").splitlines()[:600]),
                    encoding="utf-8")
    try:
        res = CliRunner().invoke(app, ["train", "--data", str(hist)])
        assert res.exit_code == 0, res.output
        yield home
    finally:
        for k, v in old.items():
            os.environ.pop(k) if v is None else os.environ.update({k: v})


def test_classify_routes_or_rejects_every_record(cases, small_model, tmp_path):
    """End to end on every other file, all formats and the oddities (one store: repeated ids with other
    texts are stored as <id>~2, ...); every tenth is run again with --resume."""
    runner = CliRunner()
    for i, case in enumerate(cases):
        if i % 2 and i < len(cases) - 6:
            continue
        out, rej = tmp_path / (case.path.name + ".out.jsonl"), tmp_path / (case.path.name + ".rej.jsonl")
        res = runner.invoke(app, ["classify", str(case.path), "-o", str(out), "--rejects", str(rej)])
        assert "Traceback" not in res.output and (res.exception is None or isinstance(res.exception, SystemExit)), \
            f"{case.path.name}: {res.exception!r}"
        if case.clear_error:
            assert res.exit_code == 2 and "error:" in res.output, res.output
            continue
        routed = {r["id"]: None for r in read_jsonl(out)} if out.exists() else {}
        rejected = [r["line"] for r in read_jsonl(rej)] if rej.exists() else []
        assert len(set(rejected)) == len(rejected)
        check(case, routed, set(rejected))
        expected = 3 if not routed else (4 if rejected else 0)
        assert res.exit_code == expected, f"{case.path.name}: exit {res.exit_code}, expected {expected}\n{res.output}"
        if i % 10:
            continue
        again = runner.invoke(app, ["classify", str(case.path), "-o", str(out), "--rejects", str(rej), "--resume"])
        assert again.exit_code == expected, again.output
        assert len(read_jsonl(out) if out.exists() else []) == len(routed)            # nothing twice
