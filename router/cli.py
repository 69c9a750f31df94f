"""The `router` command line: the composition root. It builds the settings once (router/config.py)
and is the one module under router/ that imports training/, labeling/ and dashboards/."""

from __future__ import annotations

import shutil
import sys
import warnings
from pathlib import Path
from typing import Optional

import typer
from rich import box
from rich.markup import escape
from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from router import config as config_mod
from router.catalog import CatalogError, load_catalog
from router.io import TicketFileError

# transformers' FutureWarnings are for its API's users (this code), not for the router's.
warnings.filterwarnings("ignore", category=FutureWarning, module=r"(transformers|peft|trl|accelerate)(\.|$)")

# Help strings are plain text (rich markup would swallow "[retrain]" and "[llm]"), as wide as the
# terminal up to 120 columns (120 when piped).
HELP = {"max_content_width": 120, "terminal_width": min(shutil.get_terminal_size((120, 24)).columns, 120)}
app = typer.Typer(help="Route hotline tickets to departments, and learn from dispatchers' corrections.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  rich_markup_mode=None, context_settings=HELP)
models_app = typer.Typer(help="Model versions: list, promote, roll back.", invoke_without_command=True,
                         rich_markup_mode=None, context_settings=HELP)
app.add_typer(models_app, name="models")
users_app = typer.Typer(help="Dispatchers' accounts for the labeling app.", no_args_is_help=True,
                        rich_markup_mode=None, context_settings=HELP)
app.add_typer(users_app, name="users")
rules_app = typer.Typer(help="The dispatch catalogue's rules (派单目录): keyword or pattern -> department.",
                        no_args_is_help=True, rich_markup_mode=None)
app.add_typer(rules_app, name="rules")
returns_app = typer.Typer(help="Returns (退单) from departments: each opens a dispute for a lead.",
                          no_args_is_help=True, rich_markup_mode=None, context_settings=HELP)
app.add_typer(returns_app, name="returns")
err = Console(stderr=True, highlight=False, soft_wrap=True)  # a message is one line, however narrow the terminal


class Command(typer.core.TyperCommand):
    """Usage lines name arguments as `FILE`, not typer's `{FILE}`."""

    def collect_usage_pieces(self, ctx) -> list[str]:
        return [p[1:-1] if p.startswith("{") and p.endswith("}") else p for p in super().collect_usage_pieces(ctx)]


def fail(message: str, code: int = 2):
    """Print `error: message` (plain text, never markup) and exit with `code`."""
    err.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)  # one line, however narrow the terminal
    raise typer.Exit(code)


ELSEWHERE = "if your store is elsewhere, run in the folder that holds its .router/, or name it with " \
            "ROUTER_PATHS__HOME or --config"


class Ctx:
    """Config, catalogue and store, opened once per command. Only a command that starts a store
    (`create`: import, train, zeroshot, users add) makes a new SQLite store, and says so; the others
    refuse a missing one. A store outside the current folder is named on standard error."""

    def __init__(self, config: Optional[Path], create: bool = False):
        self.cfg = config_mod.load(config)
        self.catalog = load_catalog(config_mod.resolve(self.cfg.paths.catalog))
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import SQLAlchemyError

        from router.store import open_store
        db = config_mod.sqlite_file(self.cfg)
        new = db is not None and not db.exists()
        if new and not create:
            raise ValueError(f"no store at {db.absolute()} ({ELSEWHERE}); `router import` or `router train "
                             "--data` starts a new one")
        url = config_mod.store_url(self.cfg)
        try:
            self.shown = str(db.absolute()) if db else make_url(url).render_as_string(hide_password=True)
        except SQLAlchemyError:
            self.shown = "(a malformed store.url)"
        try:
            self.engine = open_store(self.cfg)
        except (SQLAlchemyError, OSError, ImportError) as e:
            from router.routing import _brief
            raise ValueError(f"cannot open the store {self.shown}: {_brief(e)}") from None
        if new:
            err.print(escape(f"new store at {db.absolute()}"))
        elif db is None or not db.absolute().is_relative_to(Path.cwd()):
            err.print(escape(f"store: {self.shown}"))

    def empty(self) -> str:
        """"" or a hint naming the store when it holds no tickets and no models (the wrong folder?)."""
        from sqlmodel import Session, select

        from router.store import ModelVersion, Ticket
        with Session(self.engine) as s:
            if s.exec(select(Ticket.id).limit(1)).first() or s.exec(select(ModelVersion.version).limit(1)).first():
                return ""
        return f"the store {self.shown} holds no tickets and no models: {ELSEWHERE}"


    def check_outputs(self, writes: dict, reads: dict | None = None) -> None:
        """Exit 2 (one line) when an output would overwrite an input, another output, or what the
        router needs: the store's home, its database, a model (router/paths.py)."""
        from router import paths

        from router.io import WriteError

        try:
            paths.check_outputs(writes, reads, paths.protected(config_mod.home(self.cfg), self.engine))
            paths.check_writable(writes)
        except (paths.UnsafeOutput, WriteError) as e:
            fail(str(e))


def _ctx(config: Optional[Path], create: bool = False) -> Ctx:
    try:
        return Ctx(config, create)
    except (CatalogError, FileNotFoundError, ValueError) as e:
        fail(str(e))


class _Count(ProgressColumn):
    """"done/total", or "done tickets" when the total is not known (standard input, Excel)."""

    def render(self, task) -> Text:
        return Text(f"{task.completed:.0f}/{task.total:.0f}" if task.total is not None
                    else f"{task.completed:.0f} tickets")


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), _Count(), TimeRemainingColumn(), console=err)


ConfigOpt = typer.Option(None, "--config", "-c", help="TOML config file (default ./router.toml, $ROUTER_CONFIG)")


# `router classify` exit codes (README: Exit codes).
ROUTED, USAGE, NOTHING_ROUTED, SOME_REJECTED = 0, 2, 3, 4


@app.command(cls=Command)
def classify(
    source: str = typer.Argument(..., metavar="FILE", help="tickets: .jsonl, .csv or .xlsx; '-' reads standard input"),
    output: Optional[str] = typer.Option(None, "--output", "-o", help="routed tickets: .jsonl (the default), .csv "
                                         "or .xlsx (the input's columns plus the routing columns); '-' = stdout; "
                                         "default <input>.routed.jsonl (cn.csv -> cn.csv.routed.jsonl)"),
    rejects: Optional[str] = typer.Option(None, "--rejects", help="bad lines go here, with their line number "
                                          "and reason; default <output>.rejects.jsonl"),
    encoding: Optional[str] = typer.Option(None, "--encoding", help="input text encoding, e.g. utf-8, gb18030, "
                                           "gbk (default: detected: UTF-8 with or without BOM, else GB18030)"),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="model version (default: current)"),
    threshold: Optional[float] = typer.Option(None, min=0.0, max=1.0, help="queue tickets below this confidence, "
                                              "0..1 (default [classify] threshold)"),
    summary_json: Optional[Path] = typer.Option(None, "--summary-json", help="also write the summary as JSON to "
                                                "this file: counts per department, queued, audits, rejected, "
                                                "expected accuracy, model version"),
    batch_size: Optional[int] = typer.Option(None, min=1, help="tickets per batch (default [classify] batch_size)"),
    resume: bool = typer.Option(False, "--resume", help="skip tickets already in the output (after a crash)"),
    emergencies_only: bool = typer.Option(False, "--emergencies-only", help="route only the tickets the emergency "
                                          "rules flag (110/119/120/122), without the model: for a cron every minute "
                                          "(with --resume, each ticket once)"),
    decode: Optional[config_mod.Decode] = typer.Option(None, "--decode", help="LLM models: score (exact probability "
                                                       "of every department, the default) | generate "
                                                       "(outlines-constrained label)"),
    config: Optional[Path] = ConfigOpt,
):
    """Route a day's tickets with the current model, store the predictions, fill the review queue.

    Exit codes: 0 every ticket routed, 2 usage or an unreadable file, store or model,
    3 nothing routed (an empty file, or every line rejected), 4 some lines rejected (the rest routed).
    Under torchrun / accelerate launch every process scores a share of each batch (README: Several GPUs).
    """
    from router import parallel

    if not parallel.init().lead:
        parallel.serve(lambda version: _model(config, version, decode))
        return
    with parallel.leading():  # the other ranks stop when rank 0 is done, also when it fails
        from router.routing import Job

        _classify(Job(source, output, rejects, version=model, threshold=threshold, batch_size=batch_size,
                      resume=resume, encoding=encoding, emergencies_only=emergencies_only),
                  decode, config, summary_json)


def _model(config: Optional[Path], version: str, decode: Optional[config_mod.Decode]):
    """Model `version`, run as rank 0 runs it (ranks > 0 of `router classify`)."""
    from router import registry

    c = Ctx(config)
    if decode is not None:
        c.cfg.llm.decode = decode
    return registry.load(c.engine, version, c.cfg)[1]


def _note_prompt(c, version: str | None) -> None:
    """Say once when router.toml's [prompt] differs from the prompt saved with the version that routes."""
    from router import registry
    from router.llm import prompt

    mv = registry.get(c.engine, version) if version else registry.current(c.engine)
    differ = prompt.overridden(mv.path, c.cfg.prompt) if mv is not None else []
    if differ:
        err.print(escape(f"note: router.toml's [prompt] {', '.join(differ)} differs from the prompt saved with "
                         f"{mv.version}; the saved one is used (the version was trained and calibrated with "
                         f"it); newly trained versions take router.toml's"), style="yellow")


def _classify(job, decode: Optional[config_mod.Decode], config: Optional[Path], summary_json: Optional[Path]):
    from router.io import RoutedWriter, WriteError, check_encoding
    from router.llm import LoadError
    from router.parallel import ShardError
    from router.registry import NoModelError
    from router.routing import StoreError, classify as run

    c = _ctx(config)
    if decode is not None:
        c.cfg.llm.decode = decode
    job = job.resolved(c.cfg)
    output, rejects = job.output, job.rejects
    c.check_outputs({**RoutedWriter.files(output), "rejects file": rejects}
                    | ({"summary": str(summary_json)} if summary_json else {}), {"input": job.source})
    _note_prompt(c, job.version)
    try:
        check_encoding(job.encoding)
        with _progress() as progress:
            s = run(c.engine, c.catalog, job, c.cfg, progress)
    except NoModelError as e:
        fail(str(e) + (f"; {hint}" if (hint := c.empty()) else ""))
    except (TicketFileError, LoadError, ShardError) as e:
        fail(str(e) + ("; after fixing it, rerun with --resume" if isinstance(e, TicketFileError)
                       and "damaged at row" in str(e) else ""))
    except StoreError as e:
        fail(f"the store failed ({e}); what was routed so far is in {output}: rerun with --resume")
    except WriteError as e:
        where = "standard output" if output == "-" else RoutedWriter.files(output).get("output's journal", output)
        again = ("rerun the command (standard output keeps no journal for --resume)" if output == "-" else
                 "rerun with --resume to finish")
        fail(str(e) + ("" if e.routed is None else f"; stopped after {e.routed} tickets were routed and written "
                       f"to {where}: once it can be written, {again}"))
    for w in s.rule_warnings + s.model_warnings:
        err.print(f"[yellow]warning:[/yellow] {escape(w)}")
    t = Table(title=f"routed with {s.model_version}", show_lines=False)
    t.add_column("department", no_wrap=True)
    t.add_column("name")
    t.add_column("tickets", justify="right", no_wrap=True)
    for d, n in s.per_department.most_common():
        t.add_row(d, escape(c.catalog.name(d)), str(n))
    err.print(t)
    if s.emergencies:
        err.print(f"[bold red]{s.emergencies} EMERGENCIES[/bold red] (110/119/120/122): first in the output and "
                  "at the top of the review queue")
    if job.emergencies_only:
        err.print(f"{s.skipped_calm} tickets are no emergency: left for the regular run")
    expected = (f"; expected accuracy of the {s.auto} routed without review {s.expected_accuracy:.1%}"
                if s.auto else "")
    # one line, however narrow the terminal or pipe: no figure is broken across lines
    err.print(escape(f"routed {s.routed}, queued for review {s.queued} (confidence < {s.threshold:.3g}, "
                     f"{s.threshold_source}) + {s.audits} audits"
                     + (f" + {s.no_fit} no-fit" if s.no_fit else "")
                     + (f" + {s.emergencies} emergencies" if s.emergencies else "")
                     + (f", {s.waiting} already waiting" if s.waiting else "")
                     + (f", {s.decided} already decided by a dispatcher" if s.decided else "")
                     + (f", {s.over_budget} over the daily budget" if s.over_budget else "") + ", "
                     f"rejected {s.rejected}" + (f" -> {rejects}" if s.rejected else "")
                     + (f", skipped {s.skipped} already done" if s.skipped else "")
                     + (f", {s.by['places']} moved to the district their places name" if s.by['places'] else "")
                     + (f", {s.ambiguous_places} naming places of two districts (left to the model)"
                        if s.ambiguous_places else "")
                     + (f", {s.incident_members} in incidents (并单; {s.merged} wait through their incident's item)"
                        if s.incident_members else "")
                     + expected + f"; {s.rate:.0f} tickets/s" + (f"; output {output}" if output != "-" else "")),
              soft_wrap=True)
    if summary_json:
        import json

        summary_json.write_text(json.dumps({**s.as_dict(), "output": output, "rejects": rejects},
                                           ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    if s.routed + s.skipped + s.skipped_calm == 0:
        err.print("[red]nothing routed[/red]" + (" (every line rejected)" if s.rejected else " (no tickets in the input)"))
        raise typer.Exit(NOTHING_ROUTED)
    if s.rejected:
        raise typer.Exit(SOME_REJECTED)


@app.command()
def zeroshot(
    base: Optional[str] = typer.Option(None, help="base model id or folder (default [llm] base)"),
    gguf_file: Optional[str] = typer.Option(None, "--gguf-file", help="a .gguf file inside the --base folder"),
    calibrate: Optional[str] = typer.Option(None, "--calibrate", help="labeled tickets: half fit the temperature, "
                                            "half measure accuracy, F1 and ECE"),
    promote: bool = typer.Option(False, "--promote", help="make it the current model"),
    config: Optional[Path] = ConfigOpt,
):
    """Register the base LLM, with no fine-tuning, as a model version: it routes from the departments'
    duties alone, so a centre can start on day one without labels."""
    import numpy as np

    from router import registry
    from router.llm import LoadError
    from router.llm.model import LLMClassifier
    from router.store import ModelVersion, VersionStatus
    from training import data as data_mod, evaluate, gate

    c = _ctx(config, create=True)
    try:
        clf = LLMClassifier.from_settings(c.cfg, c.catalog.ids, c.catalog, **{k: v for k, v in {
            "base": base, "gguf_file": gguf_file}.items() if v is not None})
        metrics, snapshot = {}, {"source": "zero-shot"}
        if c.cfg.prompt.shots > 0:  # the few-shot block, from the store's labeled tickets (imported history)
            history = data_mod.from_store(c.engine, c.catalog)
            clf.choose_shots(history.texts, history.labels)
            snapshot["shots"] = len(clf.shots)
            err.print(f"few-shot block: {len(clf.shots)} labeled tickets from the store "
                      f"({c.cfg.prompt.shots} per department)")
        clf.prompt  # loads the model now: a missing model fails here, before anything is registered
        if calibrate:
            labeled, rejects = data_mod.from_file(calibrate, c.catalog)
            if len(labeled) < 4:
                raise ValueError(f"{calibrate}: need at least 4 labeled tickets to calibrate, found {len(labeled)}")
            order = np.random.default_rng(c.cfg.train.seed).permutation(len(labeled))
            fit, held = labeled.subset(sorted(order[::2])), labeled.subset(sorted(order[1::2]))
            with err.status(f"fitting the temperature on {len(fit)} labeled tickets"):
                cal = clf.calibrate(fit.texts, fit.labels)
            err.print(f"temperature {cal['temperature']:.3f}: ECE {cal['ece_before']:.4f} -> {cal['ece_after']:.4f} "
                      f"on the {cal['n']} calibration tickets")
            with err.status(f"evaluating on {len(held)} held-out tickets"):
                rep = evaluate.report(clf.predict_proba(held.texts), held.labels, list(clf.classes_), c.catalog)
            rep["calibration"] = {**cal, "n_calibration": cal["n"]}
            metrics = evaluate.summary(rep)
            snapshot.update({"calibration_file": str(calibrate), "n_calibration": len(fit), "n_test": len(held)})
    except (LoadError, TicketFileError, ValueError) as e:
        fail(str(e))
    version = registry.new_version("llm")
    folder = config_mod.home(c.cfg) / "models" / version
    clf.save(folder)
    if calibrate:
        evaluate.save(rep, folder, f"{version}: zero-shot held-out report")
    registry.register(c.engine, ModelVersion(
        version=version, kind="llm", path=str(folder.resolve()), status=VersionStatus.candidate, base=clf.base,
        data_snapshot=snapshot, config=c.cfg.llm.model_dump(mode="json"), metrics=metrics))
    if promote:
        registry.promote(c.engine, version, "zero-shot LLM")
    else:
        gate.settle(c.engine, version, None, first="zero-shot LLM (first model)")
    err.print(escape(f"registered {version} (zero-shot {clf.base})" + (f": accuracy {metrics['accuracy']:.4f}, "
              f"macro-F1 {metrics['macro_f1']:.4f}, ECE {metrics['ece']:.4f}" if metrics else "")
              + ("; now current" if registry.current(c.engine).version == version else "; candidate")))
    print(version)


@app.command("import", cls=Command)
def import_(
    source: str = typer.Argument(..., metavar="FILE", help="labeled tickets (.jsonl/.csv/.xlsx) to add to the store"),
    config: Optional[Path] = ConfigOpt,
):
    """Import labeled history into the store (tickets + labels with source 'import')."""
    from router.store import StoreBusy
    from training.data import import_labeled

    c = _ctx(config, create=True)
    try:
        added, rejects = import_labeled(c.engine, source, c.catalog, batch=c.cfg.store.write_batch)
    except TicketFileError as e:
        fail(str(e))
    except StoreBusy as e:
        fail(f"{e} (the batches imported before it stay; the same import again adds the rest)")
    for r in rejects[:20]:
        err.print(f"[yellow]line {r.line}:[/yellow] {escape(r.reason)}")
    err.print(f"imported {added} labeled tickets; rejected {len(rejects)}")


@app.command()
def train(
    data: Optional[str] = typer.Option(None, "--data", "-d", help="train on this labeled file instead of the store"),
    kind: config_mod.Kind = typer.Option(config_mod.Kind.baseline, help="model kind"),
    config: Optional[Path] = ConfigOpt,
):
    """Train a model version on labeled tickets (90/10 split, seed 42) and report per department."""
    from training import data as data_mod
    from training.train import train as run

    c = _ctx(config, create=bool(data))
    if data:
        try:
            labeled, rejects = data_mod.from_file(data, c.catalog)
        except TicketFileError as e:
            fail(str(e))
        if rejects:
            err.print(f"[yellow]{len(rejects)} lines rejected[/yellow], first: line {rejects[0].line}: {escape(rejects[0].reason)}")
        snapshot = {"source": str(data), "n_labels": len(labeled)}
    else:
        labeled = data_mod.from_store(c.engine, c.catalog)
        snapshot = {"source": "store", "n_labels": len(labeled)}
    with err.status(f"training {kind} on {len(labeled)} labeled tickets"):
        try:
            res = run(c.engine, c.cfg, c.catalog, labeled, kind.value, snapshot)
        except ValueError as e:
            fail(str(e))
    print_report(res.report, c.catalog)
    nf = res.report["nofit"]
    fits = (f"precision {nf['precision']:.3f}, recall {nf['recall']:.3f} ({nf['support']} held-out)"
            if nf["support"] else "n/a (0 held out)")
    err.print(escape(f"model {res.version.version}: accuracy {res.report['accuracy']:.4f}, macro-F1 "
                     f"{res.report['macro']['f1']:.4f}, ECE {res.report['ece']:.4f}; no department fits: {fits}"
                     + _fits(res.report) + f"; report in {res.version.path}"
                     + ("; now current (first model)" if res.promoted else "; candidate (see `router models`)")),
              soft_wrap=True)


def _fits(rep: dict) -> str:
    """How many labels each fit saw, and the confidence threshold "auto" will use."""
    f, t = rep.get("fits"), rep.get("threshold") or {}
    out = ""
    if f:
        h = f["held_out"]
        out = f"; these figures: a fit on {h['fit']} labels, tested on {h['test']} held out" + (
            f"; the registered version is refit on all {f['registered']['fit']} labels"
            if f["registered"]["refit_on_all_labels"] else "")
        if f["registered"].get("members"):
            out += " (its members' fits: " + ", ".join(f"{k} {n}" for k, n in f["registered"]["members"].items()) + ")"
    if t.get("threshold") is not None:
        out += (f"; auto threshold {t['threshold']:.3f}: {t['routed_share']:.0%} routed without review at "
                f"{t['expected_accuracy']:.1%} ({t['source']})" if t.get("expected_accuracy") is not None
                else f"; auto threshold 1 (no confidence reaches {t['target_accuracy']:.0%}: every ticket reviewed)")
    return out


def print_report(rep: dict, catalog, worst: int = 15) -> None:
    t = Table(title=f"held-out: {rep['n']} tickets, worst {worst} departments by F1")
    for col in ("department", "name", "precision", "recall", "F1", "support"):
        t.add_column(col, justify="right" if col not in ("department", "name") else "left")
    for d, m in sorted(rep["per_department"].items(), key=lambda kv: kv[1]["f1"])[:worst]:
        t.add_row(d, m["name"], f"{m['precision']:.3f}", f"{m['recall']:.3f}", f"{m['f1']:.3f}", str(m["support"]))
    err.print(t)
    tu = rep.get("tuning") or {}
    if tu.get("weights"):  # an ensemble: its weights and each member's accuracy on the calibration slice
        err.print(escape("ensemble weights " + ", ".join(f"{k} {w:.2f}" for k, w in tu["weights"].items())
                         + f" ({tu.get('weighting', 'fit')}); accuracy on the {tu['n']} calibration tickets: "
                         + ", ".join(f"{k} {a:.3f}" for k, a in tu.get("accuracy", {}).items())), soft_wrap=True)


@models_app.callback()
def models(ctx: typer.Context, config: Optional[Path] = ConfigOpt):
    """List model versions (newest first)."""
    if ctx.invoked_subcommand:
        return
    from router import registry

    c = _ctx(config)
    t = Table(title="model versions (newest first)", box=box.SIMPLE_HEAD, pad_edge=False)
    for col in ("version", "status", "acc", "macro-F1", "ECE", "created"):
        t.add_column(col, no_wrap=True)
    versions = registry.versions(c.engine)
    if not versions:
        err.print(escape(f"no model versions: train one with `router train`; {c.empty()}"
                         if c.empty() else f"no model versions in the store {c.shown}: train one with `router train`"))
        return
    for mv in versions:
        m = mv.metrics or {}
        fmt = lambda k: f"{m[k]:.3f}" if k in m else "-"  # noqa: E731
        t.add_row(mv.version, mv.status, fmt("accuracy"), fmt("macro_f1"), fmt("ece"),
                  f"{mv.created_at:%m-%d}")
    Console().print(t)


@models_app.command(cls=Command)
def promote(version: str = typer.Argument(..., metavar="VERSION", help="a version from `router models`"),
            reason: str = typer.Option("manual promotion", help="recorded in the history"),
            config: Optional[Path] = ConfigOpt):
    """Make VERSION the current model."""
    from router import registry

    c = _ctx(config)
    try:
        mv = registry.promote(c.engine, version, reason)
    except registry.NoModelError as e:
        fail(str(e))
    err.print(f"{mv.version} is now current")


@models_app.command()
def rollback(config: Optional[Path] = ConfigOpt):
    """Make the previously current model current again."""
    from router import registry

    c = _ctx(config)
    try:
        mv = registry.rollback(c.engine)
    except registry.NoModelError as e:
        fail(str(e))
    err.print(f"rolled back: {mv.version} is now current")


@app.command()
def retrain(
    kind: Optional[config_mod.Kind] = typer.Option(None, help="model kind (default [retrain] kind)"),
    force: bool = typer.Option(False, "--force", help="train even with fewer than [retrain] min_new_labels new labels"),
    config: Optional[Path] = ConfigOpt,
):
    """Nightly: retrain on the store when enough new labels arrived, evaluate, gate, promote.

    Exit codes: 0 promoted or nothing to do, 2 usage, 3 another run holds the lock,
    4 training failed, 5 the gate kept the candidate. Log: <home>/logs/retrain.log.
    Under torchrun the LLM trains with DDP on every process; rank 0 does the rest (README: Several GPUs).
    """
    from router import parallel
    from training import nightly

    w = parallel.init()
    c = _ctx(config)
    kind = kind or c.cfg.retrain.kind
    if kind != config_mod.Kind.llm and not w.lead:
        return  # only the LLM trains on several processes: rank 0 retrains the baseline alone
    out = nightly.run(c.engine, c.cfg, c.catalog, kind.value, force, console=err if w.lead else None)
    if not w.lead:
        if out.code not in (nightly.OK, nightly.LOCKED):
            err.print(escape(out.message))
        raise typer.Exit(out.code)
    if out.trained is not None:
        print_report(out.trained.report, c.catalog)
    raise typer.Exit(out.code)


@returns_app.command("import", cls=Command)
def returns_import(
    source: str = typer.Argument(..., metavar="FILE", help="returns: .jsonl, .csv or .xlsx with ticket id, returning "
                                 "department, reason, time, note (README: Returns and disputes)"),
    rejects: Optional[str] = typer.Option(None, "--rejects", help="bad lines go here, with their line number and "
                                          "reason; default <FILE>.rejects.jsonl"),
    encoding: Optional[str] = typer.Option(None, "--encoding", help="text encoding (default: detected, UTF-8 or GB18030)"),
    importer: str = typer.Option("", "--importer", help="who imports them (recorded with each return)"),
    config: Optional[Path] = ConfigOpt,
):
    """Record departments' returns; each returned ticket becomes a dispute that a lead decides in the
    labeling app, ahead of every other queued ticket. Exit codes as for classify: 0 every line
    imported, 2 an unreadable file, 3 nothing imported, 4 some lines rejected."""
    from router.io import check_encoding
    from router.returns import REASONS, import_returns

    c = _ctx(config)
    rejects = rejects or f"{source}.rejects.jsonl"
    c.check_outputs({"rejects file": rejects}, {"input": source})
    try:
        check_encoding(encoding)
        got = import_returns(c.engine, source, c.catalog, importer, encoding, rejects)
    except TicketFileError as e:
        fail(str(e))
    for r in got.rejects[:20]:
        err.print(f"[yellow]line {r.line}:[/yellow] {escape(r.reason)}")
    mix = ", ".join(f"{k} {got.reasons[k]}" for k in REASONS if got.reasons[k])
    err.print(escape(f"imported {got.added} returns ({mix or 'none'}); disputes opened {got.added}"
                     + (f"; {got.other} unknown reasons recorded as 其他" if got.other else "")
                     + f"; rejected {len(got.rejects)}" + (f" -> {rejects}" if got.rejects else "")))
    if not got.added:
        raise typer.Exit(NOTHING_ROUTED)
    if got.rejects:
        raise typer.Exit(SOME_REJECTED)


PasswordStdin = typer.Option(False, "--password-stdin", help="read the password from standard input (all of "
                             "it, less one final line break), for scripts; never pass it as an argument")


def _new_password(from_stdin: bool) -> str:
    """Asked twice on the terminal, never echoed; or all of standard input with --password-stdin."""
    if from_stdin:
        return sys.stdin.read().removesuffix("\n").removesuffix("\r")
    if not sys.stdin.isatty():
        fail("standard input is not a terminal: pass --password-stdin to read the password from it")
    return typer.prompt("password", hide_input=True, confirmation_prompt=True)


def _users(f, *args, **kw):
    from router import users

    try:
        return f(*args, **kw)
    except users.UserError as e:
        fail(str(e))


@users_app.command("add")
def users_add(name: str = typer.Argument(..., help="the name the dispatcher signs in with"),
              role: str = typer.Option("dispatcher", help="dispatcher | lead"), password_stdin: bool = PasswordStdin,
              config: Optional[Path] = ConfigOpt):
    """Create an account; the password is asked for (never echoed) and stored as a salted argon2id hash."""
    from router import users

    _users(users.validate, name, role, None)
    c = _ctx(config, create=True)
    u = _users(users.add, c.engine, name, _new_password(password_stdin), role)
    err.print(escape(f"added {u.role} {u.name}; the labeling app now asks for accounts (unless [labeling] auth says "
                     "otherwise)"))


@users_app.command("passwd")
def users_passwd(name: str, role: Optional[str] = typer.Option(None, help="change the role too"),
                 password_stdin: bool = PasswordStdin, config: Optional[Path] = ConfigOpt):
    """Set a new password (and clear the failed sign-ins that delay the next try)."""
    from router import users

    c = _ctx(config)
    if users.get(c.engine, name) is None:
        fail(f"no user {name!r}")
    u = _users(users.set_password, c.engine, name, _new_password(password_stdin), role)
    err.print(escape(f"new password for {u.role} {u.name}"))


@users_app.command("remove")
def users_remove(name: str, config: Optional[Path] = ConfigOpt):
    """Delete an account (their labels stay); their open app sessions end at the next click."""
    from router import users

    _users(users.remove, _ctx(config).engine, name)
    err.print(escape(f"removed {name}"))


@users_app.command("list")
def users_list(config: Optional[Path] = ConfigOpt):
    """Accounts with their role and failed sign-ins since the last good one."""
    from router import users

    c = _ctx(config)
    t = Table(box=box.SIMPLE)
    for col in ("name", "role", "created", "failed sign-ins"):
        t.add_column(col)
    for u in users.all_users(c.engine):
        t.add_row(u.name, u.role, f"{u.created_at:%Y-%m-%d}", str(u.failed_sign_ins))
    Console().print(t)
    mode = _users(users.auth_mode, c.cfg, c.engine)[0]
    err.print(f"labeling sign-in: {mode}")


@app.command()
def dashboard(
    port: Optional[int] = typer.Option(None, help="port (default [dashboards] port)"),
    address: Optional[str] = typer.Option(None, help="address to bind (default [dashboards] address)"),
    config: Optional[Path] = ConfigOpt,
):
    """Serve the monitoring dashboards (Streamlit) on the configured store."""
    import dashboards

    _serve(_ctx(config), config, "dashboards", dashboards, port, address,
           ["--server.fileWatcherType", "none"])


@app.command()
def label(
    port: Optional[int] = typer.Option(None, help="port (default [labeling] port)"),
    address: Optional[str] = typer.Option(None, help="address to bind (default [labeling] address)"),
    config: Optional[Path] = ConfigOpt,
):
    """Serve the labeling app (Streamlit): dispatchers work the review queue in the browser.
    Sign-in as [labeling] auth says: accounts (router users add), a shared password, or names only."""
    import labeling
    from router import users

    c = _ctx(config)
    mode = _users(users.auth_mode, c.cfg, c.engine)[0]
    address = address or c.cfg.labeling.address
    if mode == "names" and c.cfg.labeling.auth == config_mod.Auth.auto and address not in LOOPBACK:
        err.print(escape(f"no accounts and no shared password, so anyone who reaches the app could label under "
                         f"any name: it binds 127.0.0.1 only, not {address}. To serve the network add accounts "
                         "(router users add) or set ROUTER_LABELING__PASSWORD; [labeling] auth = \"names\" "
                         "allows names only on purpose"))
        address = "127.0.0.1"
    _serve(c, config, "labeling", labeling, port, address, [],
           {"accounts": " (sign-in: accounts)", "shared_password": " (sign-in: shared password)",
            "names": " (sign-in: names only, no password)"}[mode])


LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _serve(c: Ctx, config: Optional[Path], section: str, package, port, address,
           extra: list[str], locked: str = "") -> None:
    """Hand this process over to `streamlit run <package>/app.py` on the configured store."""
    import os

    from sqlalchemy.engine import make_url

    from router import webui

    opts = getattr(c.cfg, section)
    port, address = port or opts.port, address or opts.address
    env = dict(os.environ)
    if config:
        env["ROUTER_CONFIG"] = str(config.resolve())
    env["ROUTER_STORE__URL"] = config_mod.store_url(c.cfg)  # the same store, whatever the app's cwd
    url = make_url(env["ROUTER_STORE__URL"]).render_as_string(hide_password=True)
    what = "dashboards" if section == "dashboards" else f"{section} app"
    err.print(escape(f"{what} for {url} on http://{address}:{port}{locked} (Ctrl+C stops)"))
    app_file = Path(list(package.__path__)[0]) / "app.py"
    cmd = [sys.executable, "-m", "streamlit", "run", str(app_file), "--server.port", str(port),
           "--server.address", address, "--server.headless", "true",
           "--browser.gatherUsageStats", "false",
           *webui.SERVER_FLAGS,  # no menu (no Deploy button, no English items), no traceback on screen
           *extra]
    sys.stdout.flush()
    os.execve(sys.executable, cmd, env)  # streamlit takes over this process: signals reach it directly


@app.command("config")
def config_(defaults: bool = typer.Option(False, "--defaults", help="the declared defaults, not the effective settings"),
            config: Optional[Path] = ConfigOpt):
    """Print the effective settings as TOML, with each key's help (secrets hidden)."""
    try:
        cfg = config_mod.Settings() if defaults else config_mod.load(config)
    except (FileNotFoundError, ValueError) as e:
        fail(str(e))
    print(config_mod.dump(cfg), end="")


def main():
    app()


if __name__ == "__main__":
    sys.exit(main())


@rules_app.command("add")
def rules_add(
    pattern: str = typer.Argument(..., help="keyword (or a regular expression with --regex) in the title or text"),
    department: str = typer.Argument(..., help="department id or name (a merged one is rewritten to its successor)"),
    note: str = typer.Option(..., "--note", help="the 三定 rule or 权责清单 item the rule rests on"),
    regex: bool = typer.Option(False, "--regex", help="PATTERN is a regular expression"),
    district: Optional[str] = typer.Option(None, "--district", help="only for tickets whose place is in this district (id)"),
    by: str = typer.Option("", "--by", help="who pins the rule (recorded)"),
    force: bool = typer.Option(False, "--force", help="add it even when it matches more than [rules] max_share "
                               "of the newest tickets"),
    config: Optional[Path] = ConfigOpt,
):
    """Pin a rule: matching tickets go to DEPARTMENT whatever the model says (the most specific rule wins)."""
    from router import rules

    c = _ctx(config)
    try:
        rule, warnings = rules.add(c.engine, c.catalog, pattern, department, regex=regex, district=district,
                                   note=note, by=by, max_share=c.cfg.rules.max_share, force=force)
    except rules.RuleError as e:
        fail(str(e))
    for w in warnings:
        err.print(f"[yellow]warning:[/yellow] {escape(w)}")
    err.print(escape(f"rule {rule.id}: {rule.pattern!r} -> {rule.department} ({c.catalog.name(rule.department)})"
                     + (f" in {rule.district}" if rule.district else "")))


@rules_app.command("list")
def rules_list(everything: bool = typer.Option(False, "--all", help="disabled rules too (the history)"),
               config: Optional[Path] = ConfigOpt):
    """The rules, with their note and who pinned or disabled them."""
    from router import rules

    c = _ctx(config)
    t = Table(box=box.SIMPLE)
    for col in ("id", "pattern", "department", "district", "note", "by", "state"):
        t.add_column(col)
    for r in rules.listed(c.engine, everything):
        state = "active" if r.active else f"disabled by {r.disabled_by or '?'} {r.disabled_at:%Y-%m-%d}"
        t.add_row(str(r.id), escape(("re:" if r.regex else "") + r.pattern),
                  escape(f"{r.department} {c.catalog.name(r.department)}"), r.district or "", escape(r.note),
                  escape(f"{r.created_by} {r.created_at:%Y-%m-%d}"), state)
    Console(highlight=False, width=200).print(t)
    for w in rules.Rules.load(c.engine, c.catalog).warnings:   # the catalogue changed since they were pinned
        err.print(f"[yellow]warning:[/yellow] {escape(w)}")


@rules_app.command("disable")
def rules_disable(rule_id: int = typer.Argument(..., metavar="ID"), by: str = typer.Option("", "--by"),
                  config: Optional[Path] = ConfigOpt):
    """Stop applying a rule (kept in the history)."""
    from router import rules

    c = _ctx(config)
    try:
        rules.disable(c.engine, rule_id, by)
    except rules.RuleError as e:
        fail(str(e))
    err.print(f"rule {rule_id} disabled")
