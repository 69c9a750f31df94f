"""Ticket files in and out: JSONL, CSV and Excel in; JSONL out; a rejects file for bad lines.

Every input line ends either as a `TicketIn` or as a `Reject` naming its line and the problem,
so nothing is dropped silently. Output is appended and flushed a batch at a time; `done_ids`
reads back what a killed run already wrote, so `--resume` never writes a ticket twice.
"""

from __future__ import annotations

import csv
import json
import os
import sys
import zipfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Iterable, Iterator

from router.catalog import NONE, NONE_NAME, Catalog

FIELDS = ("id", "text", "title", "received_at", "channel", "label")
# Column headers seen in dispatch-centre exports, mapped onto our fields.
HEADER_ALIASES = {
    "工单编号": "id", "编号": "id", "工单号": "id", "ticket_id": "id",
    "诉求内容": "text", "内容": "text", "工单内容": "text", "content": "text",
    "标题": "title", "诉求标题": "title",
    "受理时间": "received_at", "来电时间": "received_at", "时间": "received_at",
    "渠道": "channel", "来源": "channel", "来源渠道": "channel",
    "承办部门": "label", "部门": "label", "department": "label",
}


NO_FIT_LABELS = {NONE, NONE_NAME}  # a label meaning "no department fits" (or a non-empty `no_fit` field)


class TicketFileError(ValueError):
    """The file as a whole cannot be read (missing, unknown format, broken workbook)."""


@dataclass
class TicketIn:
    id: str
    text: str
    line: int
    title: str | None = None
    received_at: str | None = None
    channel: str | None = None
    label: str | None = None          # a department id (names and former names are mapped); "none": no department fits
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        d = {"id": self.id, "text": self.text}
        for k in ("title", "received_at", "channel", "label"):
            if getattr(self, k) is not None:
                d[k] = getattr(self, k)
        return d


@dataclass
class Reject:
    line: int
    reason: str
    raw: str

    def as_dict(self) -> dict:
        return {"line": self.line, "reason": self.reason, "raw": self.raw}


def _str(v) -> str | None:
    if v is None:
        return None
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    if isinstance(v, datetime):
        return v.isoformat()
    s = str(v).strip()
    return s or None


def _validate(rec: dict, line: int, raw: str, seen: set, catalog: Catalog | None,
              require_label: bool) -> TicketIn | Reject:
    rec = {HEADER_ALIASES.get(k.strip() if isinstance(k, str) else k, k): v for k, v in rec.items()}
    tid, text = _str(rec.get("id")), rec.get("text")
    if tid is None:
        return Reject(line, "missing 'id'", raw)
    if not isinstance(text, str):
        return Reject(line, f"ticket {tid}: 'text' is missing or not a string", raw)
    if not text.strip():
        return Reject(line, f"ticket {tid}: 'text' is empty", raw)
    if tid in seen:
        return Reject(line, f"duplicate id {tid!r} (first seen earlier in the file)", raw)
    received = _str(rec.get("received_at"))
    if received is not None:
        try:
            datetime.fromisoformat(received.replace("/", "-"))
        except ValueError:
            return Reject(line, f"ticket {tid}: 'received_at' {received!r} is not an ISO date-time", raw)
    label = _str(rec.get("label"))
    if label is None and _str(rec.get("no_fit")) or label is not None and label.casefold() in NO_FIT_LABELS:
        label = NONE  # a dispatcher's "no department fits" (Label.department None in the store)
    elif label is not None and catalog is not None:
        dept = catalog.lookup(label)
        if dept is None:
            return Reject(line, f"ticket {tid}: unknown department {label!r}", raw)
        label = dept
    if require_label and label is None:
        return Reject(line, f"ticket {tid}: no 'label' (training needs labeled tickets)", raw)
    seen.add(tid)
    extra = {k: v for k, v in rec.items() if k not in FIELDS}
    return TicketIn(tid, text.strip(), line, _str(rec.get("title")), received,
                    _str(rec.get("channel")), label, extra)


def _jsonl_records(stream: IO[bytes]) -> Iterator[tuple[int, dict | None, str, str | None]]:
    """(line number, record or None, raw text, error) for each non-blank line."""
    for n, b in enumerate(stream, 1):
        try:
            raw = b.decode("utf-8-sig" if n == 1 else "utf-8").rstrip("\r\n")
        except UnicodeDecodeError as e:
            yield n, None, b.decode("utf-8", "replace").rstrip("\r\n"), f"not valid UTF-8 ({e.reason} at byte {e.start})"
            continue
        if not raw.strip():
            continue
        try:
            rec = json.loads(raw)
        except json.JSONDecodeError as e:
            yield n, None, raw, f"malformed JSON: {e.msg} at column {e.colno}"
            continue
        if not isinstance(rec, dict):
            yield n, None, raw, f"expected a JSON object, got {type(rec).__name__}"
            continue
        yield n, rec, raw, None


def _csv_records(stream: IO[bytes], encoding: str) -> Iterator[tuple[int, dict | None, str, str | None]]:
    bad: dict[int, str] = {}

    def lines() -> Iterator[str]:
        for n, b in enumerate(stream, 1):
            try:
                yield b.decode(encoding if n > 1 or encoding != "utf-8" else "utf-8-sig")
            except UnicodeDecodeError as e:
                bad[n] = f"not valid {encoding} ({e.reason} at byte {e.start})"
                yield "\x00BAD\n"

    reader = csv.reader(lines())
    try:
        header = next(reader)
    except StopIteration:
        return
    header = [h.strip() for h in header]
    for row in reader:
        n = reader.line_num
        raw = ",".join(row)
        if n in bad:
            yield n, None, raw, bad[n]
        elif not any(c.strip() for c in row):
            continue
        elif len(row) > len(header):
            yield n, None, raw, f"{len(row)} columns but the header has {len(header)}"
        else:
            yield n, dict(zip(header, row)), raw, None


def _xlsx_records(path: Path) -> Iterator[tuple[int, dict | None, str, str | None]]:
    import openpyxl

    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as e:
        raise TicketFileError(f"{path}: not a readable Excel workbook ({type(e).__name__}: {e})") from None
    try:
        rows = wb.worksheets[0].iter_rows(values_only=True)
        header = next(rows, None)
        if header is None:
            return
        header = [str(h).strip() if h is not None else "" for h in header]
        for n, row in enumerate(rows, 2):
            if row is None or all(c is None or str(c).strip() == "" for c in row):
                continue
            rec = {h: v for h, v in zip(header, row) if h}
            yield n, rec, json.dumps({k: _str(v) for k, v in rec.items()}, ensure_ascii=False), None
    finally:
        wb.close()


def detect_format(path: str) -> str:
    if path == "-":
        return "jsonl"
    suffix = Path(path).suffix.lower()
    formats = {".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".xlsx": "xlsx"}
    if suffix not in formats:
        raise TicketFileError(f"{path}: unknown file type {suffix!r}; use .jsonl, .csv or .xlsx")
    return formats[suffix]


def read_tickets(path: str | Path, catalog: Catalog | None = None, require_label: bool = False,
                 encoding: str = "utf-8", stdin: IO[bytes] | None = None) -> Iterator[TicketIn | Reject]:
    """Each input record, in order, as a valid TicketIn or a Reject. `-` reads standard input."""
    path = str(path)
    fmt = detect_format(path)
    if path != "-" and not Path(path).exists():
        raise TicketFileError(f"{path}: no such file")
    seen: set[str] = set()
    if fmt == "xlsx":
        records = _xlsx_records(Path(path))
        for n, rec, raw, err in records:
            yield Reject(n, err, raw) if err else _validate(rec, n, raw, seen, catalog, require_label)
        return
    stream = (stdin or sys.stdin.buffer) if path == "-" else open(path, "rb")
    try:
        records = _jsonl_records(stream) if fmt == "jsonl" else _csv_records(stream, encoding)
        for n, rec, raw, err in records:
            yield Reject(n, err, raw) if err else _validate(rec, n, raw, seen, catalog, require_label)
    finally:
        if stream is not stdin and stream is not sys.stdin.buffer:
            stream.close()


def load_tickets(path, catalog=None, require_label=False) -> tuple[list[TicketIn], list[Reject]]:
    ok, bad = [], []
    for item in read_tickets(path, catalog, require_label):
        (ok if isinstance(item, TicketIn) else bad).append(item)
    return ok, bad


def done_ids(path: str | Path, key: str = "id") -> set:
    """Values of `key` in an output file a previous run wrote; drops a torn last line first."""
    path = Path(path)
    if not path.exists():
        return set()
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        cut = data.rfind(b"\n") + 1
        with open(path, "r+b") as f:
            f.truncate(cut)
        data = data[:cut]
    out = set()
    for line in data.splitlines():
        if line.strip():
            out.add(json.loads(line)[key])
    return out


class JsonlWriter:
    """Appends JSON lines; each `write_many` is flushed and fsynced, so a kill loses at most a batch."""

    def __init__(self, path: str | Path | None, append: bool = False):
        self.path = None if path in (None, "-") else Path(path)
        if self.path:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.f: IO[str] = open(self.path, "a" if append else "w", encoding="utf-8")
        else:
            self.f = sys.stdout

    def write_many(self, rows: Iterable[dict]) -> None:
        self.f.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
        self.f.flush()
        if self.path:
            os.fsync(self.f.fileno())

    def close(self) -> None:
        if self.path:
            self.f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def write_xlsx(path: str | Path, rows: list[dict]) -> None:
    """Helper for tests and demos: an .xlsx with the given rows (header from the first row's keys)."""
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    cols = list(rows[0]) if rows else list(FIELDS[:2])
    ws.append(cols)
    for r in rows:
        ws.append([r.get(c) for c in cols])
    wb.save(path)


