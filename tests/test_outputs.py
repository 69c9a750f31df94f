"""Outputs never destroy what the router needs, and a file that cannot be written is one clear line."""

import os
import shutil
from pathlib import Path

from sqlmodel import Session, select

from router.store import ModelVersion, connect
from tests.conftest import SAMPLE, invoke, read_jsonl, write_jsonl


def day(tmp_path, n=5, name="day.jsonl"):
    return write_jsonl(tmp_path / name, read_jsonl(SAMPLE / "day.jsonl")[:n])


def refused(res, *words):
    lines = [x for x in res.output.strip().splitlines() if not x.startswith("routing ")]  # the progress bar
    assert res.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error:"), res.output
    assert all(w in lines[0] for w in words), lines[0]
    assert "Traceback" not in res.output


def current_model(home):
    with Session(connect(f"sqlite:///{home}/router.db")) as s:
        return s.exec(select(ModelVersion).where(ModelVersion.status == "current")).one()


def intact(home, files):
    """The store still lists its model and the given files are unchanged."""
    assert current_model(home).version
    assert all(p.read_bytes() == b for p, b in files.items())


def test_an_output_never_overwrites_the_store_or_a_model(trained, tmp_path):
    src = day(tmp_path)
    db = trained / "router.db"
    model = next(p for p in (trained / "models").rglob("*") if p.is_file())
    before = {model: model.read_bytes()}
    refused(invoke("classify", str(src), "-o", str(db)), "store", "router.db")
    refused(invoke("classify", str(src), "--rejects", str(db)), "store")
    refused(invoke("classify", str(src), "--rejects", f"{db}-wal"), "wal")
    refused(invoke("classify", str(src), "-o", f"{db}-shm"), "shm")
    refused(invoke("classify", str(src), "-o", str(model)), "model")
    refused(invoke("classify", str(src), "-o", str(trained / "models" / "new.jsonl")), "home")
    (tmp_path / "db.jsonl").symlink_to(db)
    refused(invoke("classify", str(src), "-o", str(tmp_path / "db.jsonl")), "store")
    (tmp_path / "home-link").symlink_to(trained)
    refused(invoke("classify", str(src), "-o", str(tmp_path / "home-link" / "router.db")), "store")
    os.link(model, tmp_path / "model.jsonl")
    refused(invoke("classify", str(src), "-o", str(tmp_path / "model.jsonl")), "hard link")
    intact(trained, before)
    assert invoke("classify", str(src), "-o", str(tmp_path / "ok.csv")).exit_code == 0


def test_an_output_never_overwrites_a_model_outside_the_home_or_an_external_database(trained, tmp_path,
                                                                                     monkeypatch):
    mv = current_model(trained)
    outside = tmp_path / "shelf" / mv.version
    shutil.copytree(mv.path, outside)
    with connect(f"sqlite:///{trained}/router.db").begin() as c:
        c.exec_driver_sql("UPDATE modelversion SET path = ? WHERE version = ?", (str(outside), mv.version))
    src = day(tmp_path)
    target = next(p for p in outside.iterdir() if p.is_file())
    before = {target: target.read_bytes()}
    refused(invoke("classify", str(src), "-o", str(target)), mv.version)
    intact(trained, before)
    monkeypatch.setenv("ROUTER_STORE__URL", f"sqlite:///{tmp_path}/elsewhere.db")
    connect(f"sqlite:///{tmp_path}/elsewhere.db")                    # the store exists
    refused(invoke("classify", str(src), "-o", str(tmp_path / "elsewhere.db")), "elsewhere.db")
    refused(invoke("classify", str(src), "--rejects", str(tmp_path / "elsewhere.db-wal")), "wal")


def test_the_input_and_the_outputs_are_never_one_another(trained, tmp_path):
    src = day(tmp_path, name="day.csv.partial.jsonl")     # the journal of `-o day.csv`
    before = {src: src.read_bytes()}
    refused(invoke("classify", str(src), "-o", str(tmp_path / "day.csv")), "journal", "input")
    refused(invoke("classify", str(src), "-o", str(tmp_path / "a.jsonl"), "--rejects", str(src)), "input")
    refused(invoke("classify", str(src), "-o", str(tmp_path / "a.xlsx"), "--rejects",
                   str(tmp_path / "a.xlsx.tmp")), "temporary")
    (tmp_path / "in-link.jsonl").symlink_to(src)
    refused(invoke("classify", str(tmp_path / "in-link.jsonl"), "-o", str(src)), "input")
    os.link(src, tmp_path / "hard.jsonl")
    refused(invoke("classify", str(src), "-o", str(tmp_path / "hard.jsonl")), "input")
    refused(invoke("classify", str(src), "-o", str(tmp_path / "o.jsonl"), "--rejects", str(tmp_path / "o.jsonl")),
            "output")
    intact(trained, before)


def test_returns_rejects_never_overwrite_the_store(home, tmp_path):
    src = write_jsonl(tmp_path / "returns.jsonl", [{"id": "T1", "department": "nope"}])
    connect(f"sqlite:///{home}/router.db")                            # the store exists
    db = home / "router.db"
    refused(invoke("returns", "import", str(src), "--rejects", str(db)), "store")
    refused(invoke("returns", "import", str(src), "--rejects", str(src)), "input")
    assert db.stat().st_size > 0 and invoke("models").exit_code == 0


def predictions(home) -> int:
    from sqlalchemy import func
    from router.store import Prediction
    with Session(connect(f"sqlite:///{home}/router.db")) as s:
        return s.exec(select(func.count()).select_from(Prediction)).one()


def test_an_output_that_cannot_be_written_is_one_line_before_routing(trained, tmp_path):
    src, n = day(tmp_path), predictions(trained)
    (tmp_path / "folder").mkdir()
    refused(invoke("classify", str(src), "-o", str(tmp_path / "folder")), "is a folder")
    refused(invoke("classify", str(src), "--rejects", str(tmp_path / "folder")), "is a folder")
    (tmp_path / "folder.xlsx").mkdir()
    refused(invoke("classify", str(src), "-o", str(tmp_path / "folder.xlsx")), "is a folder")
    refused(invoke("classify", str(src), "-o", str(src / "under-a-file.jsonl")), "not a folder")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    ro = ro if os.geteuid() else "/sys"      # root writes into a 0555 folder; sysfs refuses even root
    refused(invoke("classify", str(src), "-o", f"{ro}/routed.jsonl"), "permission denied")
    refused(invoke("classify", str(src), "-o", str(tmp_path / "ok.jsonl"), "--rejects", f"{ro}/r.jsonl"),
            "permission denied")
    assert predictions(trained) == n                      # refused before the first ticket was routed
    assert not list(tmp_path.glob("ok*"))
    refused(invoke("classify", str(src), "-o", "/dev/full"), "no space left on device", "after 0 tickets")


def test_a_full_disk_mid_run_says_how_far_it_got_and_resume_finishes(trained, tmp_path):
    import subprocess
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(disk)],
                      capture_output=True).returncode:
        import pytest
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        src = day(tmp_path, n=200)
        out = disk / "routed.csv"
        res = invoke("classify", str(src), "-o", str(out), "--batch-size", "10")
        refused(res, "no space left on device", "rerun with --resume")
        got = int(res.output.split("stopped after ")[1].split()[0])
        journal = disk / "routed.csv.partial.jsonl"
        assert 0 < got < 200 and journal.read_bytes().count(b"\n") >= got and not out.exists()  # (a torn last line)
        subprocess.run(["mount", "-o", "remount,size=4m", str(disk)], check=True)
        res = invoke("classify", str(src), "-o", str(out), "--batch-size", "10", "--resume")
        assert res.exit_code == 0, res.output
        import csv
        with open(out, encoding="utf-8-sig") as f:
            ids = [r["id"] for r in csv.DictReader(f)]
        assert sorted(ids) == sorted(t["id"] for t in read_jsonl(src)) and not journal.exists()
    finally:
        subprocess.run(["umount", str(disk)])


def newer_schema(home):
    with connect(f"sqlite:///{home}/router.db").begin() as c:
        c.exec_driver_sql("UPDATE alembic_version SET version_num = '0999_from_the_future'")
    with connect(f"sqlite:///{home}/router.db").connect() as c:
        c.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")  # every change in router.db itself
    from router import store
    store._engines.clear()
    return (home / "router.db").read_bytes()


# the newest migration this router ships (the message names it)
HEAD = max(p.stem for p in (Path(__file__).parents[1] / "router" / "migrations" / "versions").glob("0*.py"))


def test_a_store_from_a_newer_router_is_refused_everywhere(trained, tmp_path):
    from streamlit.testing.v1 import AppTest
    from router import ROOT
    before = newer_schema(trained)
    for args in (("models",), ("classify", str(day(tmp_path)))):
        refused(invoke(*args), "0999_from_the_future", HEAD, "newer version")
    assert (trained / "router.db").read_bytes() == before
    at = AppTest.from_file(str(ROOT / "labeling" / "app.py"), default_timeout=60).run()
    assert not at.exception and "0999_from_the_future" in at.error[0].value.replace("\\", "")
    at = AppTest.from_file(str(ROOT / "dashboards" / "views" / "0_Overview.py"), default_timeout=60).run()
    assert not at.exception and "0999_from_the_future" in at.error[0].value.replace("\\", "")
    assert (trained / "router.db").read_bytes() == before


def formula_day(tmp_path):
    """Ids, a key and texts that a spreadsheet would run as formulas."""
    rows = read_jsonl(SAMPLE / "day.jsonl")[:6]
    for r, tid in zip(rows, ["=X1", "+X2", "@SUM(1,1)", "-X4", "X5", "X6"]):
        r["id"] = tid
    rows[4]["text"] = "\t=cmd|' /C calc'!A0 " + rows[4]["text"]
    rows[5]["text"] = "\r=1+1 " + rows[5]["text"]
    rows[0]['=HYPERLINK("http://x","y")'] = "@SUM(1,1)"
    return write_jsonl(tmp_path / "formulas.jsonl", rows)


def test_csv_cells_and_headers_are_never_formulas_and_resume_knows_guarded_ids(trained, tmp_path):
    import csv
    src, out = formula_day(tmp_path), tmp_path / "routed.csv"
    assert invoke("classify", str(src), "-o", str(out)).exit_code == 0
    with open(out, encoding="utf-8-sig", newline="") as f:
        header, *rows = list(csv.reader(f))
    assert '\'=HYPERLINK("http://x","y")' in header
    cells = [c for r in rows for c in r] + header
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r") and c.lstrip("-").replace(".", "")
                .isdigit() is False], "a cell Excel would run"
    assert [r[0] for r in rows] == ["'=X1", "'+X2", "'@SUM(1,1)", "'-X4", "X5", "X6"]
    res = invoke("classify", str(src), "-o", str(out), "--resume")
    assert res.exit_code == 0 and "skipped 6 already done" in res.output, res.output
    with open(out, encoding="utf-8-sig", newline="") as f:
        again = list(csv.reader(f))
    assert again == [header, *rows]                      # every ticket once, each cell guarded once


def test_excel_output_has_dates_a_frozen_filtered_header_and_fitted_widths(trained, tmp_path):
    import openpyxl
    from datetime import datetime
    rows = read_jsonl(SAMPLE / "day.jsonl")[:5]
    rows[1]["text"] = "小区门口的井盖丢了，晚上很危险，请尽快处理。" * 2
    src, out = write_jsonl(tmp_path / "day.jsonl", rows), tmp_path / "routed.xlsx"
    assert invoke("classify", str(src), "-o", str(out)).exit_code == 0
    ws = openpyxl.load_workbook(out).active
    header = [c.value for c in ws[1]]
    when = ws.cell(2, header.index("received_at") + 1)
    assert when.is_date and when.value == datetime(2026, 11, 26, 0, 10, 15)  # +08:00, as shown in Beijing
    assert ws.freeze_panes == "A2" and ws.auto_filter.ref == f"A1:{ws.cell(1, len(header)).column_letter}6"
    text = ws.column_dimensions[ws.cell(1, header.index("text") + 1).column_letter].width
    assert text >= 2 * len(rows[1]["text"]) or text == 60            # Chinese characters count two
    name = ws.column_dimensions[ws.cell(1, header.index("department_name") + 1).column_letter].width
    assert name >= 2 * max(len(ws.cell(r, header.index("department_name") + 1).value) for r in range(2, 7))
    assert invoke("classify", str(src), "-o", str(out), "--resume").exit_code == 0
    assert openpyxl.load_workbook(out).active.cell(2, header.index("received_at") + 1).is_date


def test_stdout_gets_every_ticket_and_a_full_stdout_is_one_line(trained, tmp_path):
    """`router classify day.jsonl -o -`: every ticket of the day on stdout; in a real process writing to
    `> /dev/full`, exit 2 and one last line that says so (no traceback, nothing after it at exit)."""
    import json
    import subprocess
    import sys

    res = invoke("classify", str(SAMPLE / "day.jsonl"), "-o", "-")
    assert res.exit_code == 0, res.output
    rows = [json.loads(x) for x in res.stdout.splitlines() if x.startswith("{")]
    assert [r["id"] for r in rows] == [r["id"] for r in read_jsonl(SAMPLE / "day.jsonl")]
    cmd = [sys.executable, "-c", "from router.cli import app; app()", "classify", str(day(tmp_path, n=60)), "-o", "-"]
    with open("/dev/full", "w") as full:
        res = subprocess.run(cmd, stdout=full, stderr=subprocess.PIPE, text=True, env=dict(os.environ), timeout=300)
    last = res.stderr.strip().splitlines()[-1]
    assert res.returncode == 2 and "Traceback" not in res.stderr and "Exception ignored" not in res.stderr, res.stderr
    assert last.startswith("error: cannot write standard output: no space left on device"), res.stderr
    assert "stopped after 0 tickets" in last and "rerun the command (standard output keeps no journal" in last
