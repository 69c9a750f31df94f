"""Reviewer identity: accounts (router users), sign-in modes, the delay after wrong passwords,
and that a dispatcher can only undo their own decisions (AppTest on a temporary store)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import Session
from streamlit.testing.v1 import AppTest
from typer.testing import CliRunner

from router import config, users
from router.cli import app
from router.store import Label, Ticket, User
from tests.test_labeling_actions import item, labels, seed
from tests.test_labeling_app import APP, start, texts

runner = CliRunner()
ALICE, BOB = "alice-pass-1", "bob-pass-22"


@pytest.fixture(autouse=True)
def fresh_throttle():
    users.throttle._fails.clear()  # in-process counts must not leak between tests
    yield
    users.throttle._fails.clear()


@pytest.fixture
def frozen(monkeypatch):
    """Time stands still for the sign-in delays (a loaded machine takes seconds per app run)."""
    t = users.now()
    monkeypatch.setattr(users, "now", lambda: t)
    monkeypatch.setattr(users.throttle, "clock", lambda: 1000.0)


@pytest.fixture
def accounts(engine):
    users.add(engine, "alice", ALICE)
    users.add(engine, "bob", BOB)
    users.add(engine, "lead", "lead-pass-333", role="lead")
    return engine


def errors(at) -> list[str]:
    return [e.value for e in at.error]


def test_hashes_are_salted_argon2_and_checked(engine):
    a = users.add(engine, "a1", "same-password")
    b = users.add(engine, "b1", "same-password")
    assert a.password_hash.startswith("$argon2id$") and a.password_hash != b.password_hash
    assert "same-password" not in a.password_hash
    assert users.sign_in(engine, "a1", "same-password").name == "a1"
    assert users.sign_in(engine, "a1", "wrong-password").name is None
    with pytest.raises(users.UserError, match="already exists"):
        users.add(engine, "a1", "another-password")
    with pytest.raises(users.UserError, match="at least 8"):
        users.add(engine, "c1", "short")
    with pytest.raises(users.UserError, match="unknown role"):
        users.add(engine, "c1", "long-enough", role="admin")


def test_sign_in_needs_the_users_own_password(accounts):
    seed(accounts)
    at = start("alice", BOB)                                   # bob's password does not open alice's account
    assert "姓名或密码错误。" in errors(at) and "标注人：alice" not in texts(at)
    assert "姓名或密码错误。" in errors(start("alice", ""))
    assert "姓名或密码错误。" in errors(start("mallory", ALICE))  # no such account
    at = start("alice", ALICE)
    assert not at.exception and "标注人：alice" in texts(at)
    assert "小区门口的井盖丢了，晚上很危险" in texts(at)
    assert ALICE not in str(at) and BOB not in str(at)


def test_accounts_are_the_default_once_they_exist(accounts, monkeypatch):
    seed(accounts)
    monkeypatch.setenv("ROUTER_LABELING__PASSWORD", "shared-secret")
    assert users.auth_mode(config.load(), accounts)[0] == "accounts"
    assert "姓名或密码错误。" in errors(start("alice", "shared-secret"))  # the shared password no longer works
    assert "姓名或密码错误。" in errors(start("张三", "shared-secret"))
    monkeypatch.setenv("ROUTER_LABELING__AUTH", "names")       # names only: an explicit choice
    at = start("张三")
    assert "标注人：张三" in texts(at)


def test_a_dispatcher_can_undo_only_their_own_decisions(accounts):
    ids = seed(accounts)
    a = start("alice", ALICE)
    a.button(key="accept_1").click().run()                     # alice decides T1
    assert labels(accounts)[0].reviewer == "alice"
    b = start("bob", BOB)
    assert "物业不给维修电梯" in texts(b)                          # T3: not alice's T1 nor T2 (hers now)
    b.button(key="undo").click().run()                          # bob has nothing of his own to undo
    assert "没有可以撤销的操作。" in [w.value for w in b.warning]
    assert labels(accounts)[0].undone is False and item(accounts, ids["T1"]).status == "done"
    a.button(key="undo").click().run()                          # alice can
    assert labels(accounts)[0].undone is True and "小区门口的井盖丢了，晚上很危险" in texts(a)


def test_wrong_passwords_are_delayed_and_logged_without_the_password(accounts, home, frozen):
    seed(accounts)
    for i in range(3):                                          # three free tries
        assert "姓名或密码错误。" in errors(start("alice", f"guess-{i}"))
    at = start("alice", ALICE)                                  # the right password, too soon: refused unchecked
    assert any(e.startswith("密码错误次数过多，请 ") and e.endswith(" 秒后再试。") for e in errors(at))
    assert "标注人：alice" not in texts(at)
    with Session(accounts) as s:                                # the stored count survives restarts
        u = s.get(User, "alice")
        assert u.failed_sign_ins == 3
        u.failed_sign_ins, u.last_failed_at = 8, u.last_failed_at - timedelta(seconds=10)
        s.add(u)
        s.commit()
    waits = [int(e.split("请 ")[1].split(" 秒")[0]) for e in errors(start("alice", ALICE)) if "秒后再试" in e]
    assert waits and 15 <= waits[0] <= 22                       # 8 failures: 2**5 = 32 s, 10 s of it gone
    with Session(accounts) as s:
        u = s.get(User, "alice")
        u.last_failed_at -= timedelta(minutes=10)
        s.add(u)
        s.commit()
    assert "标注人：alice" in texts(start("alice", ALICE))       # after the wait it opens, and the count resets
    assert users.get(accounts, "alice").failed_sign_ins == 0
    log = (home / "logs" / "labeling.log").read_text(encoding="utf-8")
    assert "sign-in failed: name='alice'" in log and "failures=3" in log and "signed in: name='alice'" in log
    assert not any(p in log for p in ("guess-0", "guess-1", "guess-2", ALICE))


def test_removed_account_is_signed_out(accounts):
    seed(accounts)
    at = start("bob", BOB)
    assert "标注人：bob" in texts(at)
    users.remove(accounts, "bob")
    at.run()
    assert at.text_input[0].label == "姓名" and "标注人：bob" not in texts(at)


def test_empty_password_variable_is_an_error_not_a_way_around_the_password(engine, home, tmp_path, monkeypatch):
    seed(engine)
    (tmp_path / "router.toml").write_text('[labeling]\npassword = "toml-secret"\n')
    assert users.auth_mode(config.load(), engine) == ("shared_password", "toml-secret")
    monkeypatch.setenv("ROUTER_LABELING__PASSWORD", "")
    with pytest.raises(users.UserError, match="set but empty"):
        users.auth_mode(config.load(), engine)
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert any(e.startswith("登录设置有误") for e in errors(at)) and not at.text_input  # no way in
    r = runner.invoke(app, ["label", "--port", "1"])
    assert r.exit_code == 2 and "set but empty" in r.output
    monkeypatch.delenv("ROUTER_LABELING__PASSWORD")
    assert "密码错误。" in errors(start("张三", "wrong"))
    assert "标注人：张三" in texts(start("张三", "toml-secret"))


def test_shared_password_tries_are_delayed_too(engine, monkeypatch, frozen):
    seed(engine)
    monkeypatch.setenv("ROUTER_LABELING__PASSWORD", "shared-secret")
    for i in range(3):
        assert "密码错误。" in errors(start("张三", f"guess-{i}"))
    assert any(e.startswith("密码错误次数过多") for e in errors(start("张三", "shared-secret")))


def test_accounts_mode_without_accounts_says_how_to_add_one(engine, monkeypatch):
    monkeypatch.setenv("ROUTER_LABELING__AUTH", "accounts")
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert "尚未创建账号：请管理员运行 router users add 姓名。" in errors(at) and not at.text_input


def test_users_cli(home):
    r = runner.invoke(app, ["users", "add", "王芳", "--role", "lead", "--password-stdin"], input="wang-fang-pw\n")
    assert r.exit_code == 0, r.output
    assert "wang-fang-pw" not in r.output and "added lead 王芳" in r.output
    engine = config_engine()
    u = users.get(engine, "王芳")
    assert u.role == "lead" and u.password_hash.startswith("$argon2id$")
    assert users.sign_in(engine, "王芳", "wang-fang-pw").role == "lead"
    assert runner.invoke(app, ["users", "add", "王芳", "--password-stdin"], input="other-password\n").exit_code == 2   # exists
    assert runner.invoke(app, ["users", "add", "李四", "--password-stdin"], input="short\n").exit_code == 2           # too short
    assert runner.invoke(app, ["users", "add", "李四", "--role", "boss", "--password-stdin"], input="long-enough\n").exit_code == 2
    r = runner.invoke(app, ["users", "list"])
    assert r.exit_code == 0 and "王芳" in r.output and "lead" in r.output and "sign-in: accounts" in r.output
    assert runner.invoke(app, ["users", "passwd", "王芳", "--password-stdin"], input="new-password-9\n").exit_code == 0
    assert users.sign_in(engine, "王芳", "wang-fang-pw").name is None
    assert users.sign_in(engine, "王芳", "new-password-9").name == "王芳"
    assert runner.invoke(app, ["users", "remove", "王芳"]).exit_code == 0
    assert users.get(engine, "王芳") is None
    assert runner.invoke(app, ["users", "remove", "王芳"]).exit_code == 2


def config_engine():
    from router.store import connect
    return connect(config.store_url(config.load()))


def test_parallel_tries_cannot_all_pass_the_delay(accounts):
    """30 tries at once, 29 wrong and the right one: the count and the wait are one step, so only
    the free tries (and the right one, which resets them, plus its own free tries) are checked."""
    from concurrent.futures import ThreadPoolExecutor
    seed(accounts)
    guesses = [f"guess-{i}" for i in range(29)]
    guesses.insert(15, ALICE)
    with ThreadPoolExecutor(30) as pool:
        got = list(pool.map(lambda p: users.sign_in(accounts, "alice", p), guesses))
    checked = [g for g in got if not g.wait_s]
    assert len(checked) <= 2 * users.FREE_FAILURES + 1, len(checked)


def test_names_that_look_alike_or_hide_direction_marks_are_refused(engine):
    users.add(engine, "bob", "bobs-password")
    for name in ("bоb", "BOB", "ｂｏｂ", "b\u202eob", "al\u200dice", "eve\x07"):   # Cyrillic о, case, width, bidi...
        with pytest.raises(users.UserError):
            users.add(engine, name, "a-password")
    users.add(engine, "王芳", "a-password")
    assert {u.name for u in users.all_users(engine)} == {"bob", "王芳"}
    with Session(engine) as s:                             # names mode: like a name that decided tickets
        s.add(Ticket(id="T-look", text="路灯坏了"))
        s.commit()
        s.add(Label(ticket_id="T-look", department=None, reviewer="alice"))
        s.commit()
    with pytest.raises(users.UserError, match="looks like"):
        users.reviewer_name(engine, "аlice")              # Cyrillic а
    assert users.reviewer_name(engine, "alice") == "alice"


def test_with_the_defaults_and_no_accounts_the_app_binds_loopback_only(engine, monkeypatch):
    import os
    served = []

    def execve(exe, cmd, env):
        served.append(cmd[cmd.index("--server.address") + 1])
        raise SystemExit(0)

    monkeypatch.setattr(os, "execve", execve)
    res = runner.invoke(app, ["label", "--address", "0.0.0.0"])
    assert served == ["127.0.0.1"] and "binds 127.0.0.1 only, not 0.0.0.0" in res.output, res.output
    users.add(engine, "bob", "bobs-password")
    res = runner.invoke(app, ["label", "--address", "0.0.0.0"])
    assert served[-1] == "0.0.0.0" and "binds 127.0.0.1" not in res.output
    users.remove(engine, "bob")
    monkeypatch.setenv("ROUTER_LABELING__AUTH", "names")              # names only, on purpose
    runner.invoke(app, ["label", "--address", "0.0.0.0"])
    assert served[-1] == "0.0.0.0"
