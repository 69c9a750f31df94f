"""Outputs never destroy what the router needs, and a file that cannot be written is one clear line."""

import os
import shutil

from sqlmodel import Session, select

from router.store import ModelVersion, connect
from tests.conftest import SAMPLE, read_jsonl, write_jsonl
from tests.test_cli import invoke, template, trained  # noqa: F401 - fixtures


def day(tmp_path, n=5, name="day.jsonl"):
    return write_jsonl(tmp_path / name, read_jsonl(SAMPLE / "day.jsonl")[:n])


def refused(res, *words):
    lines = res.output.strip().splitlines()
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
    assert invoke("models").exit_code == 0  # creates the store
    db = home / "router.db"
    refused(invoke("returns", "import", str(src), "--rejects", str(db)), "store")
    refused(invoke("returns", "import", str(src), "--rejects", str(src)), "input")
    assert db.stat().st_size > 0 and invoke("models").exit_code == 0
