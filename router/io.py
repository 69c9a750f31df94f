"""Ticket files in and out: JSONL, CSV and Excel in; JSONL, CSV or Excel out; a rejects file for bad lines.

Every input line ends either as a `TicketIn` or as a `Reject` naming its line and the problem, so
nothing is dropped silently, whatever the bytes. The input is streamed; text files are read as
UTF-8 (with or without a BOM) or GB18030/GBK, detected or chosen. Output is appended and flushed
a batch at a time; `done_ids` reads back what a killed run already wrote, so `--resume` never
writes a ticket twice.
"""

from __future__ import annotations

import base64
import codecs
import csv
import errno
import itertools
import json
import os
import re
import sys
import unicodedata
from collections import deque
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import IO, Iterable, Iterator

from router.catalog import NONE, Catalog, is_emergency, is_none

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
CST = timezone(timedelta(hours=8))  # naive times in hotline exports are China Standard Time
YEARS = (1900, 2100)                # a received_at outside these years is a typo, not a ticket
MAX_LINE = 16 << 20                 # bytes; a longer line (or CSV record) is rejected
MAX_ID = 200                        # characters in an id
RAW_KEPT = 1 << 20                  # characters of an over-long line kept in the rejects file
csv.field_size_limit(MAX_LINE)
_SURROGATE = re.compile("[\ud800-\udfff]")
_ID_LIKE = re.compile(r"[A-Za-z0-9][\w.\-/#:]{0,63}", re.ASCII)




class TicketFileError(ValueError):
    """The file as a whole cannot be read (missing, a folder, unknown format, broken workbook, no id column)."""


@dataclass
class TicketIn:
    id: str
    text: str
    line: int
    title: str | None = None
    received_at: str | None = None
    channel: str | None = None
    label: str | None = None          # a department id (names and former names are mapped); "none": no department fits
    row: dict = field(default_factory=dict, repr=False)  # the input record, columns as in the file
    raw: str = field(default="", repr=False)             # the input line as it was

    @property
    def extra(self) -> dict:
        """The input's other fields (not among FIELDS, after header aliases)."""
        return {k: v for k, v in self.row.items()
                if HEADER_ALIASES.get(k.strip() if isinstance(k, str) else k, k) not in FIELDS}

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
    data: bytes | None = None         # the line's exact bytes, when they are not valid in the file's encoding

    def as_dict(self) -> dict:
        d = {"line": self.line, "reason": self.reason, "raw": self.raw}
        if self.data is not None:
            d["raw_base64"] = base64.b64encode(self.data).decode()
        return d


def parse_time(s: str | None) -> datetime | None:
    """ISO 8601 (also with '/'); naive times are China Standard Time."""
    if not s:
        return None
    t = datetime.fromisoformat(s.replace("/", "-"))
    return t if t.tzinfo else t.replace(tzinfo=CST)


def _str(v) -> str | None:
    if v is None:
        return None
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    if isinstance(v, (datetime, date)):
        return v.isoformat()
    s = str(v).strip()
    return s or None


def _validate(rec: dict, line: int, raw: str, seen: set, catalog: Catalog | None,
              require_label: bool) -> TicketIn | Reject:
    alias = {k: HEADER_ALIASES.get(k.strip() if isinstance(k, str) else k, k) for k in rec}
    for k, v in rec.items():
        if (isinstance(k, str) and _SURROGATE.search(k)) or (isinstance(v, str) and _SURROGATE.search(v)):
            return Reject(line, f"field {_name(k)} holds an invalid character (a lone UTF-16 surrogate)", raw)
        if isinstance(v, str) and "\x00" in v and alias[k] != "id":
            rec[k] = v.replace("\x00", "")  # PostgreSQL text cannot hold NUL: removed, for every store alike
    fields = {alias[k]: v for k, v in rec.items()}
    tid, text = fields.get("id"), fields.get("text")
    if tid is not None and not isinstance(tid, (str, int, float)) or isinstance(tid, bool):
        return Reject(line, f"'id' must be a string or a number, not {type(tid).__name__}", raw)
    tid = _str(tid)
    if tid is None:
        return Reject(line, "missing 'id'", raw)
    if len(tid) > MAX_ID:
        return Reject(line, f"'id' is longer than {MAX_ID} characters", raw)
    if any(ord(c) < 32 for c in tid):
        return Reject(line, f"'id' {tid!r} holds control characters", raw)
    if not isinstance(text, str):
        return Reject(line, f"ticket {tid}: 'text' is missing or not a string", raw)
    if not text.strip():
        return Reject(line, f"ticket {tid}: 'text' is empty", raw)
    if tid in seen:
        return Reject(line, f"duplicate id {tid!r} (first seen earlier in the file)", raw)
    received = _str(fields.get("received_at"))
    if received is not None:
        try:
            t = parse_time(received)
        except ValueError:
            return Reject(line, f"ticket {tid}: 'received_at' {received[:60]!r} is not an ISO date-time", raw)
        if not YEARS[0] <= t.year <= YEARS[1]:
            return Reject(line, f"ticket {tid}: 'received_at' {received[:60]!r} is outside the years "
                                f"{YEARS[0]}-{YEARS[1]}", raw)
    label = _str(fields.get("label"))
    if label is None and _str(rec.get("no_fit")) or label is not None and is_none(label):
        label = NONE  # a dispatcher's "no department fits"
    elif label is not None and catalog is not None:
        dept = catalog.lookup(label)
        if dept is None:
            return Reject(line, f"ticket {tid}: unknown department {label[:60]!r}", raw)
        label = dept
    if require_label and label is None:
        return Reject(line, f"ticket {tid}: no 'label' (training needs labeled tickets)", raw)
    seen.add(tid)
    return TicketIn(tid, text.strip().replace("\r\n", "\n"), line, _str(fields.get("title")), received,
                    _str(fields.get("channel")), label, rec, raw)


def _name(k) -> str:
    return repr(_SURROGATE.sub("\ufffd", k)) if isinstance(k, str) else repr(k)


# -- text files: lines, encodings ------------------------------------------------------------------
@dataclass
class _Line:
    n: int
    text: str                         # decoded, with its line break
    err: str | None = None
    data: bytes | None = None         # the bytes, when they could not be decoded


def _byte_lines(stream: IO[bytes]) -> Iterator[tuple[bytes, bool]]:
    """Physical lines with their line break; (the first MAX_LINE bytes, True) for a longer one."""
    while b := stream.readline(MAX_LINE + 1):
        if len(b) > MAX_LINE and not b.endswith(b"\n"):
            while (more := stream.readline(1 << 20)) and not more.endswith(b"\n"):
                pass
            yield b, True
        else:
            yield b, False


def detect_encoding(lines: Iterable[bytes]) -> str:
    """UTF-8 (with or without a BOM) unless most non-ASCII lines decode only as GB18030."""
    utf8 = gb = 0
    for i, b in enumerate(lines):
        if i == 0 and b.startswith(codecs.BOM_UTF8):
            return "utf-8"
        if b.isascii():
            continue
        try:
            b.decode("utf-8")
            utf8 += 1
        except UnicodeDecodeError:
            try:
                b.decode("gb18030")
                gb += 1
            except UnicodeDecodeError:
                pass
    return "gb18030" if gb > utf8 else "utf-8"


def _decoded(stream: IO[bytes], encoding: str | None, info: dict) -> Iterator[_Line]:
    """Each physical line, decoded with `encoding` (detected from the first MiB when None)."""
    raw = _byte_lines(stream)
    head, size = [], 0
    if encoding is None:
        for line in raw:
            head.append(line)
            size += len(line[0])
            if size > 1 << 20 or len(head) >= 5000:
                break
        encoding = detect_encoding(b for b, _ in head)
    info["encoding"] = encoding
    for n, (b, long) in enumerate((x for part in (head, raw) for x in part), 1):
        if n == 1 and b.startswith(codecs.BOM_UTF8) and codecs.lookup(encoding).name.startswith("utf-8"):
            b = b[3:]
        try:
            text = b.decode(encoding)
        except UnicodeDecodeError as e:
            yield _Line(n, b.decode(encoding, "backslashreplace"), f"not valid {encoding.upper()} (byte {e.start + 1} of "
                        f"the line: {e.reason}); try --encoding", b if not long else None)
            continue
        if n == 1:
            text = text.removeprefix("\ufeff")
        if long:
            yield _Line(n, text[:RAW_KEPT], f"line longer than {MAX_LINE >> 20} MiB")
        else:
            yield _Line(n, text)


def _jsonl_records(lines: Iterator[_Line]) -> Iterator[tuple[int, dict | None, str, str | None, bytes | None]]:
    """(line number, record or None, raw text, error, undecodable bytes) for each non-blank line."""
    for ln in lines:
        raw = ln.text.rstrip("\r\n")
        if ln.err:
            yield ln.n, None, raw, ln.err, ln.data
            continue
        if not raw.strip():
            continue
        try:
            rec = json.loads(raw)
        except json.JSONDecodeError as e:
            yield ln.n, None, raw, f"malformed JSON: {e.msg} at column {e.colno}", None
            continue
        except RecursionError:
            yield ln.n, None, raw, "malformed JSON: nested too deeply", None
            continue
        if not isinstance(rec, dict):
            yield ln.n, None, raw, f"expected a JSON object, got {type(rec).__name__}", None
            continue
        yield ln.n, rec, raw, None, None


def _quote_open(line: str, inside: bool) -> bool:
    """Whether a quoted CSV field is still open at the end of `line`, which starts `inside` one."""
    if not inside and '"' not in line:
        return False
    delim, skip = -1, False
    for m in re.finditer('[",]', line):
        p, c = m.start(), m.group()
        if skip:
            skip = False
        elif inside:
            if c == '"':
                skip = line.startswith('"', p + 1)  # "" is a quote inside the field
                inside = skip
        elif c == ",":
            delim = p
        elif p == delim + 1:                         # a quote at a field's start opens a quoted field
            inside = True
    return inside


def _csv_records(lines: Iterator[_Line], path: str, need=("id", "text"),
                 aliases: dict = HEADER_ALIASES) -> Iterator[tuple[int, dict | None, str, str | None, bytes | None]]:
    """Records of a CSV file with a header. A record may span lines inside a quoted field; a quote that
    is never closed (the next line looks like a record, or the file ends) rejects its first line only,
    and reading goes on from the next line, so an unbalanced quote cannot swallow the records after it."""
    header = None
    for ln in lines:
        if ln.err:
            raise TicketFileError(f"{path}: line {ln.n} (the header row): {ln.err}")
        if ln.text.strip():
            try:
                header = [h.strip() for h in next(csv.reader([ln.text], strict=True))]
            except csv.Error as e:
                raise TicketFileError(f"{path}: line {ln.n} (the header row) is not valid CSV: {e}") from None
            break
    if header is None:
        return
    fields = [aliases.get(h, h) for h in header]
    for col in need:
        if col not in fields:
            names = [col] + [k for k, v in aliases.items() if v == col]
            raise TicketFileError(f"{path}: the header row has no {col!r} column (one of {', '.join(names)})")
    id_col = fields.index(need[0])

    def looks_like_record(text: str) -> bool:
        row = next(csv.reader([text]), [])
        return len(row) == len(header) and bool(_ID_LIKE.fullmatch(row[id_col].strip()))

    pending: deque[_Line] = deque()
    while True:
        first = pending.popleft() if pending else next(lines, None)
        if first is None:
            return
        if first.err:
            yield first.n, None, first.text.rstrip("\r\n"), first.err, first.data
            continue
        chunk, size, broken = [first], len(first.text), None
        inside = _quote_open(first.text, False)
        while inside:
            ln = pending.popleft() if pending else next(lines, None)
            if ln is None:
                broken = "a quoted field opened on this line is never closed (unbalanced quote)"
                break
            if ln.err or size + len(ln.text) > MAX_LINE or looks_like_record(ln.text):
                pending.appendleft(ln)
                broken = (f"a quoted field opened on this line is not closed before line {ln.n}, which "
                          "starts the next record (unbalanced quote)")
                break
            chunk.append(ln)
            size += len(ln.text)
            inside = _quote_open(ln.text, True)
        raw = "".join(x.text for x in chunk).rstrip("\r\n")
        if not broken:
            try:
                rows = list(csv.reader([x.text for x in chunk], strict=True))
            except csv.Error as e:
                broken = f"malformed CSV: {e}" + (" (a bare CR inside an unquoted field)" if "new-line" in str(e) else "")
            else:
                if not rows or not any(c.strip() for c in rows[0]):
                    continue
                if len(rows[0]) > len(header):
                    broken = f"{len(rows[0])} columns but the header has {len(header)}"
        if broken:
            if len(chunk) > 1:  # read the lines after the first again, as records of their own
                pending.extendleft(reversed(chunk[1:]))
                raw = first.text.rstrip("\r\n")
            yield first.n, None, raw, broken, None
            continue
        yield first.n, dict(zip(header, rows[0])), raw, None, None


XLSX_MAX_BYTES = 200 << 20          # a workbook's parts, uncompressed (about 150k tickets); larger: use CSV
XLSX_MAX_STRINGS = 100 << 20        # its shared strings (read whole by openpyxl), uncompressed
XLSX_MAX_COLS = 1000                # columns in the header row
XLSX_MAX_CELL = 32767               # characters in a cell (Excel's own limit)


def _xlsx_limits(path: Path) -> None:
    """TicketFileError for a workbook over the limits, from the zip directory alone (nothing inflated)."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            parts = z.infolist()
    except (zipfile.BadZipFile, OSError) as e:
        raise TicketFileError(f"{path}: not a readable Excel workbook ({type(e).__name__}: {e})") from None
    total = sum(i.file_size for i in parts)
    strings = sum(i.file_size for i in parts if i.filename.lower().endswith("sharedstrings.xml"))
    if total > XLSX_MAX_BYTES or strings > XLSX_MAX_STRINGS:
        raise TicketFileError(f"{path}: {total >> 20} MiB uncompressed ({strings >> 20} MiB of text), over the "
                              f"limits of {XLSX_MAX_BYTES >> 20} MiB ({XLSX_MAX_STRINGS >> 20} MiB of text): "
                              "split the workbook or save it as CSV")


def _xlsx_row(width: int):
    """openpyxl's row builder for read-only sheets, replaced: a row as (values of its first `width`
    columns, the first further column holding a value or None), never padded to the sheet's width
    (a single cell in column XFD would make each row 16,384 values)."""
    def get(row, min_col=1, max_col=None, values_only=False):
        vals, extra = [None] * width, None
        for cell in row:
            c, v = cell["column"], cell["value"]
            if c <= width:
                vals[c - 1] = v
            elif extra is None and v not in (None, ""):
                extra = c
        return tuple(vals), extra
    return get


def _xlsx_records(path: Path, need=("id", "text"),
                  aliases: dict = HEADER_ALIASES) -> Iterator[tuple[int, dict | None, str, str | None, bytes | None]]:
    """Rows of the first sheet, streamed (openpyxl read-only mode), within the XLSX_* limits: a
    workbook over them is refused, a row with a cell over them is rejected."""
    import openpyxl

    _xlsx_limits(path)
    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
        ws = wb.worksheets[0]
    except Exception as e:  # openpyxl raises many kinds (zip, XML, KeyError, ValueError) for a broken file
        raise TicketFileError(f"{path}: not a readable Excel workbook ({type(e).__name__}: {e})") from None
    n = 0
    try:
        ws.reset_dimensions()  # the stored dimension may be wrong ("A1"): read every row and column there is
        ws._get_row = _xlsx_row(XLSX_MAX_COLS)
        rows = ws.iter_rows(values_only=True)
        first = next(rows, None)
        n = 1
        if first is None:
            return
        (header, extra) = first
        if extra is not None:
            raise TicketFileError(f"{path}: the header row has a value in column {extra}, over the limit of "
                                  f"{XLSX_MAX_COLS} columns")
        width = max((i + 1 for i, h in enumerate(header) if h not in (None, "")), default=0)
        header = [str(h).strip() if h is not None else "" for h in header[:width]]
        fields = [aliases.get(h, h) for h in header]
        for col in need:
            if col not in fields:
                raise TicketFileError(f"{path}: the header row has no {col!r} column")
        ws._get_row = _xlsx_row(width)  # rows from now on: the header's columns
        for n, item in enumerate(rows, 2):
            # a row missing from the sheet's XML comes as openpyxl's own empty row, not our pair
            row, extra = item if len(item) == 2 and isinstance(item[0], tuple) else ((), None)
            if extra is None and (not row or all(c is None or str(c).strip() == "" for c in row)):
                continue
            if extra is not None:
                yield n, None, _cells_json(dict(enumerate(row))), \
                    f"a value in column {extra} but the header has {len(header)} columns", None
                continue
            long = next((h for h, v in zip(header, row) if isinstance(v, str) and len(v) > XLSX_MAX_CELL), None)
            if long is not None:
                yield n, None, _cells_json({h: (v[:RAW_KEPT] if isinstance(v, str) else v)
                                            for h, v in zip(header, row)}), \
                    f"the cell in column {long!r} is longer than {XLSX_MAX_CELL:,} characters", None
                continue
            rec = {h: v for h, v in zip(header, row) if h}
            yield n, rec, _cells_json(rec), None, None
    except TicketFileError:
        raise
    except Exception as e:
        raise TicketFileError(f"{path}: the workbook is damaged at row {n + 1} ({type(e).__name__}: "
                              f"{str(e)[:200]}); rows before it were read") from None
    finally:
        wb.close()


def _cells_json(rec: dict) -> str:
    return json.dumps({str(k): _str(v) for k, v in rec.items()}, ensure_ascii=False)


def detect_format(path: str) -> str:
    if path == "-":
        return "jsonl"
    suffix = Path(path).suffix.lower()
    formats = {".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".xlsx": "xlsx"}
    if suffix not in formats:
        raise TicketFileError(f"{path}: unknown file type {suffix!r}; use .jsonl, .csv or .xlsx")
    return formats[suffix]


def count_records(path: str) -> int | None:
    """About how many records a ticket file holds, for a progress bar: its lines, less the header for
    CSV (a quoted field over several lines makes it an overestimate); None for standard input and Excel."""
    if path == "-" or detect_format(path) == "xlsx":
        return None
    n, last = 0, b"\n"
    try:
        with open(path, "rb") as f:
            while block := f.read(1 << 20):
                n, last = n + block.count(b"\n"), block[-1:]
    except OSError:
        return None
    n += last != b"\n"
    return max(n - (detect_format(path) == "csv"), 0)


def check_encoding(encoding: str | None) -> str | None:
    """None (detect) or a codec name; raises TicketFileError for an unknown one."""
    if encoding in (None, "", "auto"):
        return None
    try:
        return codecs.lookup(encoding).name
    except LookupError:
        raise TicketFileError(f"unknown encoding {encoding!r}; use utf-8, utf-8-sig, gb18030 or gbk") from None


class TicketReader:
    """Each input record, in order, as a valid TicketIn or a Reject. `-` reads standard input.
    After iterating, `encoding` is the text encoding used (None for Excel)."""

    def __init__(self, path: str | Path, catalog: Catalog | None = None, require_label: bool = False,
                 encoding: str | None = None, stdin: IO[bytes] | None = None):
        self.path, self.catalog, self.require_label = str(path), catalog, require_label
        if self.path != "-":
            p = Path(self.path)
            if p.is_dir():
                raise TicketFileError(f"{p}: is a folder, not a ticket file")
            detect_format(self.path)
            if not p.exists():
                raise TicketFileError(f"{p}: no such file")
            if not os.access(p, os.R_OK):
                raise TicketFileError(f"{p}: not readable (permission denied)")
        self.fmt = detect_format(self.path)
        self.info = {"encoding": check_encoding(encoding)}
        self.stdin = stdin

    @property
    def encoding(self) -> str | None:
        return self.info["encoding"]

    def __iter__(self) -> Iterator[TicketIn | Reject]:
        seen: set[str] = set()
        if self.fmt == "xlsx":
            self.info["encoding"] = None
            records = _xlsx_records(Path(self.path))
            stream = None
        else:
            stream = (self.stdin or sys.stdin.buffer) if self.path == "-" else open(self.path, "rb")
            lines = _decoded(stream, self.encoding, self.info)
            records = _jsonl_records(lines) if self.fmt == "jsonl" else _csv_records(lines, self.path)
        try:
            for n, rec, raw, err, data in records:
                if err:
                    yield Reject(n, err, raw, data)
                else:
                    yield _validate(rec, n, raw, seen, self.catalog, self.require_label)
        finally:
            if stream is not None and self.path != "-":
                stream.close()


def read_records(path: str | Path, need: tuple, aliases: dict, encoding: str | None = None
                 ) -> Iterator[tuple[int, dict | None, str, str | None, bytes | None]]:
    """(line, record or None, raw text, error, undecodable bytes) of any JSONL/CSV/Excel file whose
    header (CSV/Excel) has the `need` columns (after `aliases`): the ticket reader's machinery for
    other kinds of lines (router/returns.py)."""
    path = str(path)
    fmt = detect_format(path)
    p = Path(path)
    if p.is_dir() or not p.exists():
        raise TicketFileError(f"{p}: " + ("is a folder" if p.is_dir() else "no such file"))
    if fmt == "xlsx":
        yield from _xlsx_records(p, need, aliases)
        return
    with open(p, "rb") as stream:
        lines = _decoded(stream, check_encoding(encoding), {})
        yield from _jsonl_records(lines) if fmt == "jsonl" else _csv_records(lines, path, need, aliases)


def read_tickets(path: str | Path, catalog: Catalog | None = None, require_label: bool = False,
                 encoding: str | None = None, stdin: IO[bytes] | None = None) -> Iterator[TicketIn | Reject]:
    return iter(TicketReader(path, catalog, require_label, encoding, stdin))


def load_tickets(path, catalog=None, require_label=False, encoding=None) -> tuple[list[TicketIn], list[Reject]]:
    ok, bad = [], []
    for item in read_tickets(path, catalog, require_label, encoding):
        (ok if isinstance(item, TicketIn) else bad).append(item)
    return ok, bad


# -- output ----------------------------------------------------------------------------------------
class WriteError(Exception):
    """An output file cannot be written (a folder, no permission, a read-only or full disk). `routed`:
    tickets routed and written before it happened (None: before routing began)."""

    def __init__(self, path, e: OSError):
        self.path, self.routed = path, None
        why = "is a folder, not a file" if isinstance(e, IsADirectoryError) else (e.strerror or str(e))
        super().__init__(f"cannot write {path}: {why[:1].lower() + why[1:]}")


def done_ids(path: str | Path, key: str = "id") -> set:
    """Values of `key` in an output file a previous run wrote; drops a torn last line first.
    Nothing for a path that is not a regular file (standard output, a device)."""
    path = Path(path)
    try:
        if not path.is_file():
            return set()
        data = path.read_bytes()
        if data and not data.endswith(b"\n"):
            cut = data.rfind(b"\n") + 1
            with open(path, "r+b") as f:
                f.truncate(cut)
            data = data[:cut]
    except OSError as e:
        raise WriteError(path, e) from None
    out = set()
    for n, line in enumerate(data.splitlines(), 1):
        if line.strip():
            try:
                out.add(json.loads(line)[key])
            except (ValueError, KeyError, TypeError):
                raise TicketFileError(f"{path}: line {n} is not a line router classify writes (no {key!r}); "
                                      "--resume continues only its own output") from None
    return out


class JsonlWriter:
    """Appends JSON lines; each `write_many` is flushed and fsynced, so a kill loses at most a batch.
    The file is opened at once (an unwritable path fails before any work); with `keep_empty=False`
    a file this writer created and never wrote to is removed on close. OS errors raise WriteError."""

    def __init__(self, path: str | Path | None, append: bool = False, keep_empty: bool = True):
        self.path = None if path in (None, "-") else Path(path)
        self.written, self.failed = 0, False
        if self.path:
            self.keep = keep_empty or self.path.exists()
            try:
                if self.path.is_dir():
                    raise IsADirectoryError(errno.EISDIR, "is a folder")
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self.f: IO[str] = open(self.path, "a" if append else "w", encoding="utf-8",
                                       errors="backslashreplace")
            except OSError as e:
                raise WriteError(self.path, e) from None
        else:
            self.f = sys.stdout

    def write_many(self, rows: Iterable[dict]) -> None:
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        if not text:
            return
        try:
            self.f.write(text)
            self.f.flush()
            if self.path:
                os.fsync(self.f.fileno())
        except OSError as e:
            self.failed = True
            raise WriteError(self.path or "standard output", e) from None
        self.written += len(text)

    def close(self) -> None:
        if not self.path or self.f.closed:
            return
        try:
            self.f.close()
        except OSError as e:
            if not self.failed:  # the first error was already raised
                raise WriteError(self.path, e) from None
        if not self.written and not self.keep:
            self.path.unlink(missing_ok=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def output_format(path: str | None) -> str:
    suffix = Path(path).suffix.lower() if path and path != "-" else ""
    return {".csv": "csv", ".xlsx": "xlsx"}.get(suffix, "jsonl")


# Routing columns of CSV/Excel output: row key (the English header) -> Chinese header.
ROUTED_COLUMNS = {
    "department": "派单部门编号",
    "department_name": "派单部门",
    "confidence": "置信度",
    "queued": "待人工复核",
    "top": "候选部门",
    "model_version": "模型版本",
    "stored_id": "入库编号",
    "by": "判定依据",
    "place": "地点",
    "district": "属地",
    "co_departments": "协办部门建议",
    "incident_id": "并单编号",
    "duplicate_of": "重复工单",
}
_CJK = re.compile("[\u3400-\u9fff]")
_ILLEGAL_XLSX = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
XLSX_CELL = 32767                      # characters an Excel cell holds


class RoutedWriter:
    """The routed output. JSONL: one line per ticket, appended a batch at a time (the file is its own
    journal). CSV/Excel: the input's columns plus the routing columns (Chinese headers when the input's
    are Chinese); the rows are journaled to `<output>.partial.jsonl` as they come (what --resume reads)
    and the file is written from the journal when the run finishes. A finished file holds every
    emergency (110/119/120/122) before every other ticket: `finish` copies them first (standard output
    keeps only each batch's emergencies first)."""

    def __init__(self, path: str, append: bool = False):
        self.path, self.fmt = path, output_format(path)
        if self.fmt == "jsonl":
            self.journal = None if path == "-" else Path(path)
            self.w = JsonlWriter(path, append)
            return
        self.journal = self.files(path)["output's journal"]
        if append and not self.journal.exists() and Path(path).is_file():
            try:
                self._journal_from(Path(path))  # a finished output: carry its rows into the journal
            except OSError as e:
                raise WriteError(self.journal, e) from None
        if append:
            done_ids(self.journal)  # drops a torn last line
        self.w = JsonlWriter(self.journal, append)

    @staticmethod
    def files(path: str) -> dict[str, Path]:
        """Every file a run writing `path` writes (what it is -> path): the output, and for CSV/Excel its
        journal and the temporary file it is written to."""
        if path == "-":
            return {}
        p = Path(path)
        if output_format(path) == "jsonl":
            return {"output": p, "output's temporary file": p.with_name(p.name + ".tmp")}
        return {"output": p, "output's journal": p.with_name(p.name + ".partial.jsonl"),
                "output's temporary file": p.with_name(p.name + ".tmp")}

    def done(self) -> set:
        return done_ids(self.journal) if self.journal else set()

    def write(self, tickets: list[TicketIn], rows: list[dict]) -> None:
        if self.fmt == "jsonl":
            self.w.write_many(rows)
        else:
            self.w.write_many({"id": t.id, "in": {str(k): _cell(v) for k, v in t.row.items()},
                               "out": _routing_cells(r)} for t, r in zip(tickets, rows))

    def finish(self, encoding: str | None = None) -> None:
        """Write the CSV/Excel file from the journal (a complete run); CSV in the input's encoding
        (UTF-8 with a BOM, so Excel opens it, unless the input was GB18030/GBK)."""
        self.w.close()
        if self.fmt == "jsonl":
            if self.journal and self.journal.is_file():
                try:
                    _urgent_first(self.journal, self.files(self.path)["output's temporary file"])
                except OSError as e:
                    raise WriteError(self.path, e) from None
            return

        def entries(urgent: bool | None = None):  # the journal's rows (only the emergencies' or the others')
            for e in _jsonl_rows(self.journal):
                if urgent is None or urgent == is_emergency(e["out"].get("department")):
                    yield e
        cols_in = list(dict.fromkeys(k for e in entries() for k in e["in"]))
        zh = any(_CJK.search(c) for c in cols_in)
        names = {k: v if zh else k for k, v in ROUTED_COLUMNS.items()}
        names = {k: (("派单_" if zh else "routed_") + n if n in cols_in else n) for k, n in names.items()}
        header = cols_in + list(names.values())
        rows = ([e["in"].get(c) for c in cols_in] + [_routing_value(k, e["out"].get(k), zh) for k in names]
                for urgent in (True, False) for e in entries(urgent))
        tmp = self.files(self.path)["output's temporary file"]
        try:
            if self.fmt == "csv":
                enc = encoding if encoding and not codecs.lookup(encoding).name.startswith("utf-8") else "utf-8-sig"
                with open(tmp, "w", encoding=enc, errors="replace", newline="") as f:
                    w = csv.writer(f)
                    w.writerow([_inert(h) for h in header])
                    w.writerows([_inert(v) for v in r] for r in rows)
            else:
                _write_xlsx_rows(tmp, header, rows)
            os.replace(tmp, self.path)
        except OSError as e:
            tmp.unlink(missing_ok=True)
            raise WriteError(self.path, e) from None
        self.journal.unlink()

    def close(self) -> None:
        self.w.close()

    def _journal_from(self, path: Path) -> None:
        if self.fmt == "xlsx":
            records = list(_xlsx_records(path))
        else:
            with open(path, "rb") as f:
                records = list(_csv_records(_decoded(f, None, {}), str(path)))
        routed = {v: k for k, zh in ROUTED_COLUMNS.items() for v in (k, zh, "routed_" + k, "派单_" + zh)}
        with JsonlWriter(self.journal) as j:
            for _, rec, _, err, _ in records:
                if err or rec is None:
                    continue
                if self.fmt == "csv":  # the cells as they were before _inert guarded them
                    rec = {_uninert(k): _uninert(v) for k, v in rec.items()}
                tid = _str(next((v for k, v in rec.items() if HEADER_ALIASES.get(k, k) == "id"), None))
                j.write_many([{"id": tid, "in": {k: _cell(v) for k, v in rec.items() if k not in routed},
                               "out": {routed[k]: v for k, v in rec.items() if k in routed}}])


def _jsonl_rows(path: Path) -> Iterator[dict]:
    with open(path, encoding="utf-8") as f:
        yield from (json.loads(x) for x in f if x.strip())


def _urgent_first(path: Path, tmp: Path) -> None:
    """Rewrite the routed JSONL `path` (through `tmp`, replaced at once: a kill leaves it whole) with
    every emergency before every other ticket, each group in its order; nothing when it already is so.
    Streams the file (two passes), whatever its size."""
    calm = False
    for r in _jsonl_rows(path):
        if is_emergency(r.get("department")) and calm:
            break
        calm = calm or not is_emergency(r.get("department"))
    else:
        return
    try:
        with open(tmp, "w", encoding="utf-8") as out:
            for urgent in (True, False):
                with open(path, encoding="utf-8") as f:
                    out.writelines(x for x in f if x.strip() and is_emergency(json.loads(x).get("department")) == urgent)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _cell(v):
    if v is None or isinstance(v, (str, int, float, bool)):
        return v
    if isinstance(v, (datetime, date)):
        return v.isoformat()
    try:
        return json.dumps(v, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        return str(v)[:RAW_KEPT]


def _routing_cells(r: dict) -> dict:
    out = {k: r[k] for k in ROUTED_COLUMNS if k in r}
    for k in ("top", "co_departments"):
        if k in r:
            out[k] = "; ".join(f"{x['name']} {x['p']:.2f}" for x in r[k])
    return out


def _routing_value(key: str, v, zh: bool):
    if key == "queued" and isinstance(v, bool):
        return ("是" if v else "否") if zh else ("yes" if v else "no")
    return v


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # OWASP's CSV-injection list


def _inert(v):
    """A CSV cell Excel will not run as a formula (ticket text is data, never code): one starting with
    = + - @ TAB or CR gets a leading ' (numbers such as -5 stay as they are)."""
    return "'" + v if isinstance(v, str) and v.startswith(FORMULA_STARTS) and not _is_number(v) else v


def _uninert(v):
    """A cell of a CSV this module wrote, as it was before `_inert` (what --resume compares)."""
    return v[1:] if isinstance(v, str) and v.startswith("'") and _inert(v[1:]) == v else v


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def _width(v) -> int:
    """Columns a value takes in a spreadsheet: CJK and other wide characters count two."""
    if v is None:
        return 0
    return max(sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in line)
               for line in str(v).splitlines() or [""])


def _excel_time(v):
    """A received_at text as a naive China Standard Time datetime Excel shows as a date; else as given."""
    if not isinstance(v, str):
        return v
    try:
        return parse_time(v).astimezone(CST).replace(tzinfo=None)
    except (ValueError, OverflowError):
        return v


def _write_xlsx_rows(path: Path, header: list, rows: Iterable[list]) -> None:
    """A workbook whose text cells are never formulas, received_at a real date, the header frozen with
    an autofilter, and column widths fitted to the text (wide characters count two)."""
    import openpyxl
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.utils import get_column_letter

    rows = iter(rows)
    head = list(itertools.islice(rows, 1000))   # the widths' sample; the rest is streamed
    wb = openpyxl.Workbook(write_only=True)
    ws = wb.create_sheet()
    times = {i for i, h in enumerate(header) if HEADER_ALIASES.get(str(h).strip(), h) == "received_at"}
    for i, h in enumerate(header):
        fit = max([_width(h) + 2] + [_width(r[i]) for r in head if i < len(r)])  # + 2: the filter button
        ws.column_dimensions[get_column_letter(i + 1)].width = min(max(fit + 1, 8), 60)
    ws.freeze_panes = "A2"

    def cell(v, i=None):
        if i in times and isinstance(v := _excel_time(v), datetime):
            c = WriteOnlyCell(ws, value=v)
            c.number_format = "yyyy-mm-dd hh:mm:ss"
            return c
        if isinstance(v, str):
            c = WriteOnlyCell(ws, value=_ILLEGAL_XLSX.sub("", v)[:XLSX_CELL])
            c.data_type = "s"  # never a formula, whatever the text starts with
            return c
        return v

    ws.append([cell(h) for h in header])
    n = 0
    for n, r in enumerate(itertools.chain(head, rows), 1):
        ws.append([cell(v, i) for i, v in enumerate(r)])
    ws.auto_filter.ref = f"A1:{get_column_letter(max(len(header), 1))}{n + 1}"   # written when saved
    wb.save(path)


def write_xlsx(path: str | Path, rows: list[dict]) -> None:
    """Helper for tests and demos: an .xlsx with the given rows (header from the first row's keys)."""
    cols = list(rows[0]) if rows else list(FIELDS[:2])
    _write_xlsx_rows(Path(path), cols, ([r.get(c) for c in cols] for r in rows))

