"""The dispatch catalogue's rules (派单目录), as the centre's leads pin them.

A rule sends tickets whose title or text holds `pattern` (a keyword; a regular expression with
`regex`) to `department`, optionally only when the ticket's place lies in `district`
(router/places.py); its `note` cites the 三定 rule or 权责清单 item it rests on. Rules win over the
model (router/dispatch.catalogue_rules): the output says `by: rule:<id>`. When several rules match, the
most specific wins: a district-limited rule before a citywide one, then the longer pattern (a regular
expression counts its literal characters); matching rules of equal specificity that name different
departments are a conflict: the oldest rule wins and the output lists them all (`rule_conflict`).

Rules live in the store (`Rule`), never deleted: `disable` keeps the rule with who and when.
`add` refuses an empty pattern, a bad or empty-matching regular expression, a pattern matching more
than `max_share` of the newest stored tickets (a rule matching everything), an unknown department or
district, and a department that is inactive with no successor; one merged into another is rewritten
to its successor, with a warning. The catalogue can change after a rule was pinned: each routing run
checks the rules again (`Rules.load(engine, catalog)`), routes a rule of a since-merged department to its
successor and skips one whose department is now inactive, and warns about both.

The guard "functional matters never go to street offices" (国办函〔2025〕66号 五): a ticket whose
matter is functional (the model's best department is not `territorial`) is never sent to a
`level: street` department, by a rule or by places; such a rule is skipped for that ticket
(`guard` in the output).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlmodel import Session, select

from router.catalog import RESERVED, Catalog, NONE
from router.store import Rule, Ticket, now, writing


class RuleError(ValueError):
    """A rule the catalogue refuses (one line, for the CLI and the app)."""


@dataclass(frozen=True)
class Compiled:
    id: int
    department: str
    district: str | None
    pattern: re.Pattern
    weight: int            # literal characters: longer is more specific

    @property
    def specificity(self) -> tuple[int, int]:
        return (self.district is not None, self.weight)


def literal_length(pattern: str, regex: bool) -> int:
    if not regex:
        return len(pattern)
    return len(re.sub(r"\\.|[.^$*+?{}\[\]|()]", "", pattern))


def compile_rule(r: Rule, department: str | None = None) -> Compiled:
    return Compiled(r.id, department or r.department, r.district,
                    re.compile(r.pattern if r.regex else re.escape(r.pattern)), literal_length(r.pattern, r.regex))


@dataclass
class Match:
    rule: Compiled | None = None
    conflict: list[int] | None = None     # ids of equally specific rules naming other departments


class Rules:
    """The active rules, compiled once per routing run. With `catalog`, checked against it as it is now:
    a rule whose department was merged since it was pinned routes to the successor, one whose department
    is inactive with no successor is not applied; each says so in `warnings`."""

    def __init__(self, rules: list[Rule], catalog: Catalog | None = None):
        self.rules, self.warnings = [], []
        for r in sorted(rules, key=lambda r: r.id):
            dept = r.department
            if catalog is not None:
                try:
                    dept, warn = check_department(catalog, r.department)
                except RuleError as e:
                    self.warnings.append(f"rule {r.id} ({r.pattern!r}) is not applied: {e}")
                    continue
                if warn:
                    self.warnings.append(f"rule {r.id} ({r.pattern!r}): {warn}: it routes to {dept}")
            self.rules.append(compile_rule(r, dept))

    @classmethod
    def load(cls, engine, catalog: Catalog | None = None) -> "Rules":
        with Session(engine) as s:
            return cls(list(s.exec(select(Rule).where(Rule.active == True))), catalog)  # noqa: E712

    def match(self, text: str, title: str | None, district: str | None) -> Match:
        s = f"{title}\n{text}" if title else text
        hits = [r for r in self.rules if (r.district is None or r.district == district) and r.pattern.search(s)]
        if not hits:
            return Match()
        best = max(r.specificity for r in hits)
        top = [r for r in hits if r.specificity == best]          # in id order: the oldest first
        others = sorted({r.id for r in top if r.department != top[0].department} | {top[0].id})
        return Match(top[0], others if len(others) > 1 else None)


def check_department(catalog: Catalog, dept: str) -> tuple[str, str | None]:
    """(the department a rule may name, a warning) for `dept`: merged ones go to their successor."""
    if dept in RESERVED and dept != NONE:
        return dept, None
    d = catalog.by_id.get(dept) or next((x for x in catalog.departments if dept in (x.name, *x.aliases)), None)
    if d is None:
        raise RuleError(f"unknown department {dept!r}")
    if d.active:
        return d.id, None
    succ = catalog.canonical(d.id)
    if succ == d.id or not catalog.by_id[succ].active:
        raise RuleError(f"department {d.id} ({d.name}) is inactive and has no active successor")
    return succ, f"department {d.id} ({d.name}) was merged into {succ} ({catalog.by_id[succ].name})"


def add(engine, catalog: Catalog, pattern: str, department: str, *, regex: bool = False, district: str | None = None,
        note: str = "", by: str = "", max_share: float = 0.2, sample: int = 2000, force: bool = False
        ) -> tuple[Rule, list[str]]:
    """Store a new rule after checking it; returns it with the warnings."""
    warnings = []
    if not pattern or not pattern.strip():
        raise RuleError("empty pattern: a rule needs a keyword or a regular expression")
    if regex:
        try:
            rx = re.compile(pattern)
        except re.error as e:
            raise RuleError(f"bad regular expression {pattern!r}: {e}") from None
        if rx.search(""):
            raise RuleError(f"the regular expression {pattern!r} matches an empty text: it would match every ticket")
    else:
        rx = re.compile(re.escape(pattern))
    dept, warn = check_department(catalog, department)
    if warn:
        warnings.append(f"{warn}: the rule names {dept}")
    if district is not None:
        d = catalog.by_id.get(district)
        if d is None or not d.territorial:
            raise RuleError(f"district {district!r} is not a district government of the catalogue")
    if dept in catalog.by_id and catalog.by_id[dept].level == "street":
        warnings.append(f"{dept} is a street office: the rule applies only to territorial matters (the guard)")
    with Session(engine) as s:
        texts = s.exec(select(Ticket.title, Ticket.text).order_by(Ticket.created_at.desc()).limit(sample)).all()
    texts = [f"{h}\n{t}" if h else t for h, t in texts]
    if texts and not force:
        share = sum(bool(rx.search(t)) for t in texts) / len(texts)
        if share > max_share:
            raise RuleError(f"the pattern {pattern!r} matches {share:.0%} of the newest {len(texts)} tickets "
                            f"(more than {max_share:.0%}): too broad for a rule (--force to add it anyway)")
    mine = (district is not None, literal_length(pattern, regex))
    for r in Rules.load(engine).rules:   # an equally specific rule to another department: a conflict
        if r.department != dept and r.district == district and r.specificity == mine:
            n = sum(bool(rx.search(t) and r.pattern.search(t)) for t in texts)
            if n or rx.pattern == r.pattern.pattern:
                seen = f" (both match {n} of the newest {len(texts)} tickets)" if n else ""
                warnings.append(f"conflicts with rule {r.id} ({r.pattern.pattern!r} -> {r.department}){seen}: "
                                f"equally specific, the older rule {r.id} wins and such tickets list both (rule_conflict)")
    with writing(engine) as s:
        rule = Rule(pattern=pattern, regex=regex, department=dept, district=district, note=note, created_by=by)
        s.add(rule)
        s.commit()
        s.refresh(rule)
    return rule, warnings


def disable(engine, rule_id: int, by: str = "") -> Rule:
    with writing(engine) as s:
        rule = s.get(Rule, rule_id)
        if rule is None:
            raise RuleError(f"no rule {rule_id}")
        if not rule.active:
            raise RuleError(f"rule {rule_id} is already disabled (by {rule.disabled_by or '?'} at {rule.disabled_at:%Y-%m-%d %H:%M})")
        rule.active, rule.disabled_by, rule.disabled_at = False, by, now()
        s.add(rule)
        s.commit()
        s.refresh(rule)
        return rule


def listed(engine, everything: bool = False) -> list[Rule]:
    with Session(engine) as s:
        q = select(Rule).order_by(Rule.id)
        return list(s.exec(q if everything else q.where(Rule.active == True)))  # noqa: E712
