"""The department catalogue: ids are stable, names and duties may change over time.

Labels everywhere refer to department ids. A renamed department keeps its id (the old
name goes to `aliases`); a merged one is marked `active: false` with `merged_into`, and
its history maps onto the surviving id.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path


# "No department fits" is the reserved department id NONE everywhere (a dispatcher's N, a model's
# reject class, files, predictions, the app), except in the store's Label.department, where it is
# None: `to_label` / `from_label` convert. A queue item for such a ticket has reason `no_fit`.
NONE = "none"
NONE_NAME = "无合适部门"
# Reserved dispositions beside `none` (国办函〔2025〕66号 section 二): hand to an emergency line at once,
# or point to the legal channel. Labels, models and the output use these ids; their names and duties:
EMERGENCY = {
    "emergency-110": ("110 报警（公安）", "正在发生的违法犯罪、暴力伤人、抢劫、绑架、走失儿童、有人轻生等须立即出警的警情"),
    "emergency-119": ("119 火警（消防救援）", "正在发生的火灾、燃气泄漏、爆炸、人员被困等须立即救援的险情"),
    "emergency-120": ("120 急救（医疗）", "昏迷、呼吸困难、大出血、中毒、心脏病发作等须立即急救的病情"),
    "emergency-122": ("122 交通事故报警", "有人受伤的交通事故，须交警和急救立即到场"),
}
LEGAL = "legal-channel"
LEGAL_NAME = "依法分流（诉讼、仲裁、信访、纪检监察、行政复议、信息公开）"
LEGAL_DUTIES = ("属于法院诉讼或执行、劳动人事仲裁、信访复查复核、纪检监察举报、行政复议、政府信息公开申请等"
                "法定途径的事项：告知来电人依法通过相应渠道办理")
RESERVED = {NONE: (NONE_NAME, ""), **EMERGENCY, LEGAL: (LEGAL_NAME, LEGAL_DUTIES)}


def is_emergency(dept_id: str | None) -> bool:
    return dept_id in EMERGENCY


def is_none(label: str) -> bool:
    """Whether a label in a file means "no department fits": `none` or 无合适部门, any case."""
    return label.casefold() in (NONE, NONE_NAME)


def to_label(dept: str | None) -> str | None:
    """A department id as Label.department stores it (NONE: None)."""
    return None if dept in (None, NONE) else dept


def from_label(dept: str | None) -> str:
    """Label.department as a department id (None: NONE)."""
    return NONE if dept is None else dept


LEVELS = ("city", "district", "street")


class CatalogError(ValueError):
    pass


@dataclass(frozen=True)
class Department:
    id: str
    name: str
    duties: str
    aliases: tuple[str, ...] = ()
    active: bool = True
    merged_into: str | None = None
    places: tuple[str, ...] = ()     # a district's streets, towns, villages, estates, roads: what tells it apart
    level: str = "city"              # city | district | street (a township or street office)
    territorial: bool = False        # handles matters by where they are (district/street governments), not by function


@dataclass
class Catalog:
    departments: list[Department]
    city: str = ""
    by_id: dict[str, Department] = field(init=False, repr=False)

    def __post_init__(self):
        self.by_id = {d.id: d for d in self.departments}

    @property
    def active(self) -> list[Department]:
        return [d for d in self.departments if d.active]

    @property
    def ids(self) -> list[str]:
        """Active ids in catalogue order: the classes every model predicts over."""
        return [d.id for d in self.active]

    def name(self, dept_id: str) -> str:
        d = self.by_id.get(dept_id)
        return d.name if d else (RESERVED[dept_id][0] if dept_id in RESERVED else dept_id)

    def canonical(self, dept_id: str) -> str:
        """Follow merges, so labels given to a merged department count for its successor."""
        seen = set()
        while dept_id in self.by_id and self.by_id[dept_id].merged_into and dept_id not in seen:
            seen.add(dept_id)
            dept_id = self.by_id[dept_id].merged_into
        return dept_id

    def lookup(self, label: str) -> str | None:
        """An id for a label given as id, current name or former name; None if unknown."""
        if label in self.by_id:
            return self.canonical(label)
        if label in RESERVED and label != NONE:   # a dispatcher's emergency / legal-channel disposition
            return label
        for d in self.departments:
            if label == d.name or label in d.aliases:
                return self.canonical(d.id)
        return None


def load_catalog(path: str | Path) -> Catalog:
    path = Path(path)
    if not path.exists():
        raise CatalogError(f"department catalogue {path} does not exist")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CatalogError(f"{path}: not valid UTF-8 JSON: {e}") from None
    items = raw.get("departments") if isinstance(raw, dict) else raw
    if not isinstance(items, list) or not items:
        raise CatalogError(f"{path}: expected a non-empty list under 'departments'")
    depts, ids, names = [], {}, {}
    for i, d in enumerate(items):
        where = f"{path}: department #{i + 1}"
        if not isinstance(d, dict):
            raise CatalogError(f"{where}: expected an object")
        for key in ("id", "name", "duties"):
            if not isinstance(d.get(key), str) or not d[key].strip():
                raise CatalogError(f"{where}: missing or empty '{key}'")
        if d["id"] in RESERVED:
            raise CatalogError(f"{where}: the id {d['id']!r} is reserved ({RESERVED[d['id']][0]})")
        if d["id"] in ids:
            raise CatalogError(f"{where}: duplicate id {d['id']!r} (also #{ids[d['id']]})")
        if d["name"] in names:
            raise CatalogError(f"{where}: duplicate name {d['name']!r} (also #{names[d['name']]})")
        places = d.get("places") or []
        if not isinstance(places, list) or not all(isinstance(p, str) and p.strip() for p in places):
            raise CatalogError(f"{where}: 'places' must be a list of non-empty names")
        level = d.get("level") or ("district" if places else "city")
        if level not in LEVELS:
            raise CatalogError(f"{where}: 'level' must be one of {', '.join(LEVELS)}, not {level!r}")
        territorial = d.get("territorial", level != "city")
        if not isinstance(territorial, bool):
            raise CatalogError(f"{where}: 'territorial' must be true or false")
        ids[d["id"]], names[d["name"]] = i + 1, i + 1
        depts.append(Department(d["id"], d["name"].strip(), d["duties"].strip(),
                                tuple(d.get("aliases") or ()), bool(d.get("active", True)),
                                d.get("merged_into"), tuple(p.strip() for p in places), level, territorial))
    for d in depts:
        if d.merged_into and d.merged_into not in ids:
            raise CatalogError(f"{path}: {d.id} is merged into unknown id {d.merged_into!r}")
    cat = Catalog(depts, city=raw.get("city", "") if isinstance(raw, dict) else "")
    if not cat.active:
        raise CatalogError(f"{path}: no active department")
    return cat
