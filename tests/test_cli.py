"""The `router` CLI end to end: import, train, classify (files, stdin/stdout, resume), models."""

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter

from sqlalchemy import func
from sqlmodel import Session, select
from typer.testing import CliRunner

from router.cli import app
from router.store import ModelVersion, Prediction, QueueItem, Ticket, connect
from tests.conftest import SAMPLE, empty_store, invoke, read_jsonl, write_jsonl

runner = CliRunner()


def test_classify_before_training_is_a_clear_error(home, tmp_path):
    res = invoke("classify", str(SAMPLE / "day.jsonl"))
    assert res.exit_code == 2 and f"no store at {home / 'router.db'}" in res.output and not home.exists()
    history = write_jsonl(tmp_path / "h.jsonl", read_jsonl(SAMPLE / "history.jsonl")[:20])
    assert invoke("import", str(history)).exit_code == 0
    res = invoke("classify", str(SAMPLE / "day.jsonl"))
    assert res.exit_code == 2 and "no current model" in res.output and "no tickets" not in res.output


def test_main_job(trained, tmp_path, cfg):
    res = invoke("train")  # a second version stays a candidate
    assert res.exit_code == 0 and "candidate" in res.output
    day = [dict(t) for t in read_jsonl(SAMPLE / "day.jsonl")]   # the whole day: some tickets name another district
    src = write_jsonl(tmp_path / "day.jsonl", day)
    with open(src, "a") as f:
        f.write("{not json\n")
    res = invoke("classify", str(src), "--threshold", "0.5")
    assert res.exit_code == 4, res.output  # some lines rejected
    out = read_jsonl(tmp_path / "day.routed.jsonl")
    assert [r["id"] for r in out] == [t["id"] for t in day]
    r = out[0]
    assert set(r) >= {"department", "department_name", "confidence", "top", "model_version"}
    assert len(r["top"]) == 3 and r["top"][0]["department"] == r["department"]
    assert all({"by", "place", "district"} <= set(x) for x in out)
    moved = [x for x in out if x["by"] == "places"]           # a territorial matter sent where its place is
    assert moved and all(x["department"] == x["district"] and x["place"] for x in moved)
    assert f"{len(moved)} moved to the district their places name" in " ".join(res.output.split())
    rejects = read_jsonl(tmp_path / "day.rejects.jsonl")
    assert rejects[0]["line"] == len(day) + 1 and "malformed JSON" in rejects[0]["reason"]
    assert f"routed {len(day)}" in res.output and "rejected 1" in res.output
    engine = connect(f"sqlite:///{trained}/router.db")
    with Session(engine) as s:
        assert s.exec(select(func.count()).select_from(Prediction)).one() == len(day)
        queued = s.exec(select(func.count()).select_from(QueueItem)
                        .where(QueueItem.reason == "low_confidence")).one()
        audits = set(s.exec(select(QueueItem.ticket_id).where(QueueItem.reason == "audit")))
    assert queued == sum(r["confidence"] < 0.5 for r in out)
    assert queued + len(audits) == sum(r["queued"] for r in out)        # audits say queued too
    assert all(r["queued"] for r in out if r["id"] in audits)
    models = invoke("models")
    assert models.exit_code == 0 and "current" in models.output and "candidate" in models.output


def test_stdin_to_stdout(trained):
    lines = "".join(json.dumps({"id": f"s{i}", "text": t}, ensure_ascii=False) + "\n"
                    for i, t in enumerate(["小区停水三天了", "出租车绕路多收钱"]))
    res = runner.invoke(app, ["classify", "-", "-o", "-"], input=lines)
    assert res.exit_code == 0, res.output
    rows = [json.loads(x) for x in res.stdout.splitlines() if x.startswith("{")]
    assert [r["id"] for r in rows] == ["s0", "s1"]


def test_promote_and_rollback(trained):
    invoke("train")
    from router import registry
    engine = connect(f"sqlite:///{trained}/router.db")
    first, second = sorted(registry.versions(engine), key=lambda v: v.created_at)
    assert invoke("models", "promote", second.version).exit_code == 0
    assert registry.current(engine).version == second.version
    assert invoke("models", "rollback").exit_code == 0
    assert registry.current(engine).version == first.version
    res = invoke("models", "promote", "nope")
    assert res.exit_code == 2 and "no model version 'nope'" in res.output


def test_resume_after_kill_9(trained, tmp_path):
    base = read_jsonl(SAMPLE / "day.jsonl")
    rows = [dict(t, id=f"{t['id']}-{k}") for k in range(16) for t in base]  # 8,000 tickets
    src = write_jsonl(tmp_path / "big.jsonl", rows)
    with open(src, "a") as f:
        f.write('{"id": "bad"}\n')
    out = tmp_path / "big.routed.jsonl"
    cmd = [sys.executable, "-m", "router.cli", "classify", str(src), "--batch-size", "50"]
    env = dict(os.environ)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and (not out.exists() or out.stat().st_size < 20000):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = len(read_jsonl(out)) if out.exists() else 0
    assert 0 < partial < len(rows), "kill landed before or after the run; make the input bigger"
    res = subprocess.run(cmd + ["--resume"], env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 4, res.stderr  # routed, one line rejected
    ids = [r["id"] for r in read_jsonl(out)]
    assert Counter(ids).most_common(1)[0][1] == 1                      # never a duplicate line
    assert set(ids) == {r["id"] for r in rows}                         # every ticket routed
    assert [r["line"] for r in read_jsonl(tmp_path / "big.rejects.jsonl")] == [len(rows) + 1]
    engine = connect(f"sqlite:///{trained}/router.db")
    with Session(engine) as s:
        n = s.exec(select(func.count(func.distinct(Prediction.ticket_id)))).one()
        total = s.exec(select(func.count()).select_from(Prediction)).one()
    assert n == total == len(rows)                                     # no duplicate predictions


def day_rows(n, prefix="d"):
    return [dict(t, id=f"{prefix}{i}") for i, t in enumerate(read_jsonl(SAMPLE / "day.jsonl")[:n])]


def test_gbk_csv_in_excel_and_csv_out(trained, tmp_path):
    import csv as csv_mod

    import openpyxl

    rows = day_rows(12)
    src = tmp_path / "cn.csv"
    with open(src, "w", encoding="gbk", errors="replace", newline="") as f:
        w = csv_mod.writer(f)
        w.writerow(["工单编号", "诉求内容", "来源渠道", "备注"])
        w.writerows([r["id"], r["text"], "电话", f"备注{i}"] for i, r in enumerate(rows))
    texts = [r[1] for r in csv_mod.reader(open(src, encoding="gbk"))][1:]
    res = invoke("classify", str(src), "-o", str(tmp_path / "routed.xlsx"))
    assert res.exit_code == 0, res.output
    ws = openpyxl.load_workbook(tmp_path / "routed.xlsx").active
    table = [[c.value for c in r] for r in ws.iter_rows()]
    assert table[0][:6] == ["工单编号", "诉求内容", "来源渠道", "备注", "派单部门编号", "派单部门"]
    assert [r[0] for r in table[1:]] == [r["id"] for r in rows] and [r[1] for r in table[1:]] == texts
    assert all(r[7] in ("是", "否") for r in table[1:]) and not (tmp_path / "routed.xlsx.partial.jsonl").exists()
    res = invoke("classify", str(src), "-o", str(tmp_path / "routed.csv"), "--encoding", "gbk")
    assert res.exit_code == 0, res.output
    back = list(csv_mod.reader(open(tmp_path / "routed.csv", encoding="gb18030")))  # the input's encoding
    assert back[0][:5] == ["工单编号", "诉求内容", "来源渠道", "备注", "派单部门编号"] and len(back) == 13
    assert [r[4] for r in back[1:]] == [r[4] for r in table[1:]]                       # the same routing


def test_two_inputs_of_one_name_never_share_an_output(trained, tmp_path):
    from router.io import write_xlsx

    rows = day_rows(5)
    write_jsonl(tmp_path / "cn.jsonl", rows)
    (tmp_path / "cn.csv").write_text("id,text\n" + "".join(f"{r['id']},{r['text']}\n" for r in rows), encoding="utf-8")
    write_xlsx(tmp_path / "cn.xlsx", [{"id": r["id"], "text": r["text"]} for r in rows])
    for name in ("cn.jsonl", "cn.csv", "cn.xlsx"):
        assert invoke("classify", str(tmp_path / name)).exit_code == 0
    outs = {p.name for p in tmp_path.glob("*.routed.jsonl")}
    assert outs == {"cn.routed.jsonl", "cn.csv.routed.jsonl", "cn.xlsx.routed.jsonl"}
    assert all(len(read_jsonl(tmp_path / o)) == 5 for o in outs)


def test_exit_codes(trained, tmp_path, monkeypatch):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    res = invoke("classify", str(empty))
    assert res.exit_code == 3 and "nothing routed" in res.output
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"id": "x"}, {"text": "no id"}])
    res = invoke("classify", str(bad))
    assert res.exit_code == 3 and "every line rejected" in res.output
    assert [r["line"] for r in read_jsonl(tmp_path / "bad.rejects.jsonl")] == [1, 2]
    day = write_jsonl(tmp_path / "day.jsonl", day_rows(3))
    res = invoke("classify", str(day), "--threshold", "1.5")
    assert res.exit_code == 2 and "'--threshold'" in res.output and "less than or equal to 1" in res.output
    assert not (tmp_path / "day.routed.jsonl").exists()
    monkeypatch.setenv("ROUTER_CLASSIFY__THRESHOLD", "-0.1")
    res = invoke("classify", str(day))
    assert res.exit_code == 2 and "[classify] threshold" in res.output and "between 0 and 1" in res.output
    monkeypatch.delenv("ROUTER_CLASSIFY__THRESHOLD")
    res = invoke("classify", str(day), "-o", str(day))
    assert res.exit_code == 2 and "overwrite the input" in res.output and len(read_jsonl(day)) == 3
    res = invoke("classify", str(tmp_path))
    assert res.exit_code == 2 and "is a folder" in res.output
    res = invoke("classify", str(day), "--encoding", "klingon")
    assert res.exit_code == 2 and "unknown encoding" in res.output
    assert invoke("classify", str(day)).exit_code == 0


def test_a_later_day_reusing_ids_keeps_both_days(trained, tmp_path):
    day1, day2 = day_rows(6), [dict(t, id=f"d{i}") for i, t in enumerate(read_jsonl(SAMPLE / "day.jsonl")[10:16])]
    day2[0]["text"] = day1[0]["text"]                     # d0: the same ticket again (a rerun): one ticket
    assert invoke("classify", str(write_jsonl(tmp_path / "day1.jsonl", day1))).exit_code == 0
    res = invoke("classify", str(write_jsonl(tmp_path / "day2.jsonl", day2)))
    assert res.exit_code == 0, res.output
    out = {r["id"]: r for r in read_jsonl(tmp_path / "day2.routed.jsonl")}
    assert "stored_id" not in out["d0"] and [out[f"d{i}"]["stored_id"] for i in range(1, 6)] == [
        f"d{i}~2" for i in range(1, 6)]
    engine = connect(f"sqlite:///{trained}/router.db")
    with Session(engine) as s:
        texts = dict(s.exec(select(Ticket.id, Ticket.text)).all())
        predicted = set(s.exec(select(Prediction.ticket_id)).all())
    assert all(texts[f"d{i}"] == day1[i]["text"] and texts[f"d{i}~2"] == day2[i]["text"] for i in range(1, 6))
    assert {f"d{i}~2" for i in range(1, 6)} <= predicted and "d0~2" not in texts
    res = invoke("classify", str(tmp_path / "day2.jsonl"), "-o", str(tmp_path / "again.jsonl"))  # a rerun
    assert [r.get("stored_id") for r in read_jsonl(tmp_path / "again.jsonl")][1:] == [f"d{i}~2" for i in range(1, 6)]


def test_a_ticket_the_store_refuses_is_rejected_without_printing_texts(trained, tmp_path):
    engine = connect(f"sqlite:///{trained}/router.db")
    with engine.begin() as c:
        c.exec_driver_sql("CREATE TRIGGER refuse BEFORE INSERT ON ticket WHEN NEW.text LIKE '%POISON%' "
                          "BEGIN SELECT RAISE(ABORT, 'refused by a check'); END")
    rows = day_rows(10)
    rows[3]["text"] = "POISON 我的身份证号110101199003077777，电话13800001111"
    res = invoke("classify", str(write_jsonl(tmp_path / "day.jsonl", rows)))
    assert res.exit_code == 4, res.output
    assert all(r["text"][:12] not in res.output for r in rows) and "110101199003077777" not in res.output
    (rej,) = read_jsonl(tmp_path / "day.rejects.jsonl")
    assert rej["line"] == 4 and "the store refused it" in rej["reason"] and "refused by a check" in rej["reason"]
    assert "110101199003077777" not in rej["reason"] and json.loads(rej["raw"])["id"] == "d3"
    assert [r["id"] for r in read_jsonl(tmp_path / "day.routed.jsonl")] == [r["id"] for r in rows if r["id"] != "d3"]


def test_an_unreachable_store_is_a_clear_error(home, tmp_path, monkeypatch):
    monkeypatch.setenv("ROUTER_STORE__URL", "postgresql+psycopg://router:s3cret-pw@127.0.0.1:9/router")
    res = invoke("classify", str(SAMPLE / "day.jsonl"))
    assert res.exit_code == 2 and "cannot open the store postgresql+psycopg://router:***@127.0.0.1:9/router" \
        in res.output, res.output
    assert "s3cret-pw" not in res.output and "Traceback" not in res.output


def test_help_shows_brackets_and_argument_names():
    res = invoke("retrain", "--help")
    assert "(default [retrain] kind)" in res.output and "[retrain] min_new_labels" in res.output
    res = invoke("classify", "--help")
    assert "classify [OPTIONS] FILE" in res.output and "{" not in res.output
    assert "3 nothing routed" in res.output and "[classify] threshold" in res.output


def test_poison_lines_on_postgresql(trained, tmp_path, monkeypatch, pg_url):
    """The poison lines that broke a day's run on PostgreSQL (NUL, years 1 and 9999, lone surrogates)
    end as routed (NUL removed) or rejected; the rest of the day is routed and stored."""
    url = pg_url

    from router import registry
    pg = empty_store(url)
    mv = registry.current(connect(f"sqlite:///{trained}/router.db"))
    registry.register(pg, ModelVersion(**mv.model_dump(exclude={"status", "promoted_at"})))
    registry.promote(pg, mv.version)
    rows = day_rows(8, "pg")
    src = tmp_path / "day.jsonl"
    poison = ['{"id": "n1", "text": "燃气\\u0000泄漏", "title": "标\\u0000题"}',
              '{"id": "y1", "text": "x", "received_at": "0001-01-01T00:00:00"}',
              '{"id": "y2", "text": "x", "received_at": "9999-12-31T23:59:59"}',
              '{"id": "s1", "text": "a \\ud800 b"}']
    src.write_text("\n".join(poison + [json.dumps(r, ensure_ascii=False) for r in rows]) + "\n", encoding="utf-8")
    monkeypatch.setenv("ROUTER_STORE__URL", url)
    res = invoke("classify", str(src))
    assert res.exit_code == 4, res.output
    assert [r["line"] for r in read_jsonl(tmp_path / "day.rejects.jsonl")] == [2, 3, 4]
    assert [r["id"] for r in read_jsonl(tmp_path / "day.routed.jsonl")] == ["n1"] + [r["id"] for r in rows]
    with Session(pg) as s:
        assert s.get(Ticket, "n1").text == "燃气泄漏" and s.get(Ticket, "n1").title == "标题"
        assert s.exec(select(func.count()).select_from(Prediction)).one() == 9
    assert invoke("classify", str(src), "--resume").exit_code == 4
    assert len(read_jsonl(tmp_path / "day.routed.jsonl")) == 9
