"""Shop policy: the TOML file beside the store (``shop.db`` -> ``shop.toml``).

The file is read whole and validated whole: one bad key refuses the file,
and every problem is reported with its key and line, so a typo never turns
into a silently different policy. The defaults live in one place,
:data:`DEFAULT_CONFIG_TEXT`, which is also the commented file ``init`` writes.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from core.errors import ConfigError

CHANNELS = ("email", "sms", "push", "wecom")
CAP_PERIODS = {"day": 1, "week": 7, "month": 30}
LANGUAGES = ("en", "zh")
BUILTIN_MODELS = ("rf11", "cn8")
MAX_DAYS = 36_500  # a hundred years: any day count beyond this is a typo, and dates would overflow
MAX_WHOLE = 1_000_000_000

DEFAULT_CONFIG_TEXT = """\
# tierdesk shop policy. Every key is optional; the values below are the defaults.
# `tierdesk config check` validates this file; a bad key refuses the whole file.

timezone = "{timezone}"          # the shop's days (IANA name)
language = "en"                  # or "zh": segment and stage names
currency = "{currency}"                   # shown before amounts
allow_self_approval = false      # may the submitter of a campaign approve it?
trust_env_user = false           # honour TIERDESK_USER (scripts and tests only)

[rfm]
model = "rf11"                   # rf11 | cn8 | a name under [segments]
lookback_days = 365              # the window R, F and M are read over
f_cutoffs = [2, 3, 4, 6]         # F score 2..5 start at these order counts
small_population = 100           # below this many scored customers R and M use
r_fallback_days = [30, 60, 90, 180]   # ...these recency cut-offs (days, R5..R2)
m_fallback_multiples = [1, 2, 3, 5]   # ...and these multiples of the median order
cn8_split = "mean"               # cn8 high/low against: "mean" | "median" | "fixed"
# cn8_fixed = {{ recency_days = 60, frequency = 2, monetary = 500.0 }}

[lifecycle]
new_days = 7                     # signed up this many days ago or less: new
active_orders_30d = 2            # this many orders in the last 30 days: active
dormant_days = 30                # last order this many days ago: dormant
churned_days = 90                # ...and this many: churned

[tags]
price_sensitive_share = 0.5      # share of orders with a discount
quality_aov_multiple = 2.0       # AOV at least this multiple of the median AOV...
quality_max_discount_share = 0.25  # ...and few discounted orders
social_days = 90                 # shares and reviews counted over this many days
social_min_events = 2
cart_days = 14                   # a cart this recent with no order since
high_value_min_m_score = 4       # high-value-dormant: M score at least this...
high_value_dormant_days = 30     # ...and no order for this many days
affinity_share = 0.5             # share of orders in one category
affinity_min_orders = 3
koc_min_social = 3               # KOC candidate: social events in social_days...
koc_min_orders = 3               # ...and orders in the window

# Touch budget: every rule that applies must pass. Windows roll over shop
# days ending on the send date: day = that day, week = 7 days, month = 30 days.
[[caps]]
channel = "any"                  # a channel (email, sms, push, wecom) or "any"
segment = "any"                  # a segment name or "any"
max = 3
per = "week"                     # day | week | month

[[caps]]
channel = "sms"
segment = "any"
max = 1
per = "day"

[quiet_hours]                    # customer's local time, else the shop's
start = "21:00"
end = "09:00"

[send]
drop_tolerance = 0.05            # more drops than this needs re-approval
attribution_days = 7             # an order this many days after a touch converts

[delivery]
dir = "outbox"                   # beside the store: <campaign>-<channel>.jsonl
webhook_url = ""                 # optional; POST with an Idempotency-Key header

# A custom segment map: rules are read top-down, first match wins; R, F and M
# are score ranges "lo-hi" (or one score). Select it with [rfm] model = "mine".
# [[segments.mine]]
# name = "VIP"
# r = "4-5"
# f = "4-5"
"""


@dataclass(frozen=True)
class RfmConfig:
    model: str = "rf11"
    lookback_days: int = 365
    f_cutoffs: tuple[int, ...] = (2, 3, 4, 6)
    small_population: int = 100
    r_fallback_days: tuple[int, ...] = (30, 60, 90, 180)
    m_fallback_multiples: tuple[float, ...] = (1.0, 2.0, 3.0, 5.0)
    cn8_split: str = "mean"
    cn8_fixed: dict[str, float] | None = None


@dataclass(frozen=True)
class LifecycleConfig:
    new_days: int = 7
    active_orders_30d: int = 2
    dormant_days: int = 30
    churned_days: int = 90


@dataclass(frozen=True)
class TagsConfig:
    price_sensitive_share: float = 0.5
    quality_aov_multiple: float = 2.0
    quality_max_discount_share: float = 0.25
    social_days: int = 90
    social_min_events: int = 2
    cart_days: int = 14
    high_value_min_m_score: int = 4
    high_value_dormant_days: int = 30
    affinity_share: float = 0.5
    affinity_min_orders: int = 3
    koc_min_social: int = 3
    koc_min_orders: int = 3


@dataclass(frozen=True)
class CapRule:
    channel: str
    segment: str
    max: int
    per: str

    @property
    def days(self) -> int:
        return CAP_PERIODS[self.per]

    @property
    def name(self) -> str:
        """A short reason code, e.g. ``cap:sms/any/1-per-day``."""
        return f"cap:{self.channel}/{self.segment}/{self.max}-per-{self.per}"


@dataclass(frozen=True)
class QuietHours:
    start: str = "21:00"
    end: str = "09:00"


@dataclass(frozen=True)
class SendConfig:
    drop_tolerance: float = 0.05
    attribution_days: int = 7


@dataclass(frozen=True)
class DeliveryConfig:
    dir: str = "outbox"
    webhook_url: str = ""


@dataclass(frozen=True)
class SegmentRule:
    name: str
    r: tuple[int, int] = (1, 5)
    f: tuple[int, int] = (1, 5)
    m: tuple[int, int] = (1, 5)


DEFAULT_CAPS = (
    CapRule(channel="any", segment="any", max=3, per="week"),
    CapRule(channel="sms", segment="any", max=1, per="day"),
)


@dataclass(frozen=True)
class Config:
    timezone: str = "UTC"
    language: str = "en"
    currency: str = "$"
    allow_self_approval: bool = False
    trust_env_user: bool = False
    rfm: RfmConfig = field(default_factory=RfmConfig)
    lifecycle: LifecycleConfig = field(default_factory=LifecycleConfig)
    tags: TagsConfig = field(default_factory=TagsConfig)
    caps: tuple[CapRule, ...] = DEFAULT_CAPS
    quiet_hours: QuietHours = field(default_factory=QuietHours)
    send: SendConfig = field(default_factory=SendConfig)
    delivery: DeliveryConfig = field(default_factory=DeliveryConfig)
    segments: dict[str, tuple[SegmentRule, ...]] = field(default_factory=dict)
    path: Path | None = None
    warnings: tuple[str, ...] = ()

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def policy(self) -> dict[str, Any]:
        """The effective policy as plain data (no path, no warnings)."""
        data = asdict(self)
        data.pop("path")
        data.pop("warnings")
        return data

    @property
    def hash(self) -> str:
        """A digest of the effective policy: comments and key order don't change it."""
        canonical = json.dumps(self.policy(), sort_keys=True, default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def config_path_for(db_path: Path) -> Path:
    """The config file that belongs to a store: ``shop.db`` -> ``shop.toml``."""
    return db_path.with_suffix(".toml")


def default_config_text(timezone: str = "UTC", currency: str = "$") -> str:
    return DEFAULT_CONFIG_TEXT.format(timezone=timezone, currency=currency)


def write_default_config(path: Path, timezone: str = "UTC", currency: str = "$") -> None:
    """Create the commented default config unless the file already exists."""
    try:
        with open(path, "x", encoding="utf-8") as handle:
            handle.write(default_config_text(timezone, currency))
    except FileExistsError:
        return


def load_config(path: Path) -> Config:
    """Read and validate the config; a missing file means the defaults."""
    if not path.exists():
        return Config(path=path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the config ({exc})") from None
    return parse_config(text, path)


def parse_config(text: str, path: Path | None = None) -> Config:
    """Parse config text; raises :class:`ConfigError` naming every bad key and line."""
    where = str(path) if path else "config"
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: not valid TOML: {exc}") from None
    lines = _key_lines(text)
    checker = _Checker(where, lines)
    config = checker.build(raw)
    if checker.problems:
        count = len(checker.problems)
        summary = checker.problems[0] if count == 1 else f"{count} problems in {where}"
        raise ConfigError(summary, problems=checker.problems)
    return Config(**{**config, "path": path, "warnings": tuple(checker.warnings)})


# --- validation -----------------------------------------------------------

_TIME = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
_RANGE = re.compile(r"^\s*([1-5])\s*(?:-\s*([1-5]))?\s*$")


class _Checker:
    """Builds the config dataclasses while collecting every problem found."""

    def __init__(self, where: str, lines: dict[tuple, int]) -> None:
        self.where = where
        self.lines = lines
        self.problems: list[str] = []
        self.warnings: list[str] = []

    def at(self, keypath: tuple) -> str:
        line = self.lines.get(keypath)
        while line is None and len(keypath) > 1:
            keypath = keypath[:-1]
            line = self.lines.get(keypath)
        return f"{self.where}, line {line}" if line else self.where

    def fail(self, keypath: tuple, message: str) -> None:
        dotted = ".".join(str(part) if not isinstance(part, int) else f"[{part}]" for part in keypath)
        dotted = dotted.replace(".[", "[")
        self.problems.append(f"{self.at(keypath)}: {dotted}: {message}")

    def unknown(self, keypath: tuple, table: dict, known: set[str]) -> None:
        for key in table:
            if key not in known:
                suggestion = _closest(key, known)
                hint = f" (did you mean '{suggestion}'?)" if suggestion else ""
                self.fail(keypath + (key,), f"unknown key{hint}")

    # typed getters: they record a problem and fall back to the default
    def integer(self, table: dict, keypath: tuple, default: int, minimum: int = 0,
                maximum: int | None = None) -> int:
        value = table.get(keypath[-1], default)
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(keypath, f"expected a whole number, got {value!r}")
            return default
        if maximum is None:
            maximum = MAX_DAYS if str(keypath[-1]).endswith("_days") else MAX_WHOLE
        if value < minimum or value > maximum:
            self.fail(keypath, f"must be between {minimum} and {maximum:,}, got {value}")
            return default
        return value

    def number(self, table: dict, keypath: tuple, default: float, low: float, high: float | None) -> float:
        value = table.get(keypath[-1], default)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail(keypath, f"expected a number, got {value!r}")
            return default
        if isinstance(value, float) and not math.isfinite(value):
            self.fail(keypath, f"expected a finite number, got {value!r}")
            return default
        if value < low or (high is not None and value > high):
            bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
            self.fail(keypath, f"must be {bounds}, got {value}")
            return default
        return float(value)

    def boolean(self, table: dict, keypath: tuple, default: bool) -> bool:
        value = table.get(keypath[-1], default)
        if not isinstance(value, bool):
            self.fail(keypath, f"expected true or false, got {value!r}")
            return default
        return value

    def string(self, table: dict, keypath: tuple, default: str, choices: tuple[str, ...] | None = None) -> str:
        value = table.get(keypath[-1], default)
        if not isinstance(value, str):
            self.fail(keypath, f"expected a string, got {value!r}")
            return default
        if choices is not None and value not in choices:
            self.fail(keypath, f"expected one of {', '.join(choices)}, got {value!r}")
            return default
        return value

    def table(self, raw: dict, keypath: tuple) -> dict:
        value = raw.get(keypath[-1], {})
        if not isinstance(value, dict):
            self.fail(keypath, "expected a table")
            return {}
        return value

    def ascending(self, table: dict, keypath: tuple, default: tuple, count: int, kind: type) -> tuple:
        value = table.get(keypath[-1], list(default))
        top = MAX_DAYS if str(keypath[-1]).endswith("_days") else MAX_WHOLE
        ok = isinstance(value, list) and len(value) == count and all(
            isinstance(item, (int, float)) and not isinstance(item, bool) and 0 < item <= top for item in value
        )
        if ok and kind is int:
            ok = all(isinstance(item, int) for item in value)
        if not ok:
            noun = "whole numbers" if kind is int else "numbers"
            self.fail(keypath, f"expected {count} positive {noun} up to {top:,}, got {value!r}")
            return default
        if any(b <= a for a, b in zip(value, value[1:])):
            self.fail(keypath, f"must be strictly increasing, got {value!r}")
            return default
        return tuple(kind(item) for item in value)

    def build(self, raw: dict) -> dict[str, Any]:
        top_known = {
            "timezone", "language", "currency", "allow_self_approval", "trust_env_user",
            "rfm", "lifecycle", "tags", "caps", "quiet_hours", "send", "delivery", "segments",
        }
        self.unknown((), raw, top_known)
        out: dict[str, Any] = {}
        timezone = self.string(raw, ("timezone",), "UTC")
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            self.fail(("timezone",), f"unknown time zone {timezone!r} (use an IANA name such as 'Asia/Shanghai')")
            timezone = "UTC"
        out["timezone"] = timezone
        out["language"] = self.string(raw, ("language",), "en", LANGUAGES)
        out["currency"] = self.string(raw, ("currency",), "$")
        out["allow_self_approval"] = self.boolean(raw, ("allow_self_approval",), False)
        out["trust_env_user"] = self.boolean(raw, ("trust_env_user",), False)
        out["segments"] = self.segments(raw)
        out["rfm"] = self.rfm(raw, set(out["segments"]))
        out["lifecycle"] = self.lifecycle(raw)
        out["tags"] = self.tags(raw)
        out["caps"] = self.caps(raw, out["rfm"].model, out["segments"])
        out["quiet_hours"] = self.quiet_hours(raw)
        out["send"] = self.send(raw)
        out["delivery"] = self.delivery(raw)
        return out

    def rfm(self, raw: dict, custom_models: set[str]) -> RfmConfig:
        table = self.table(raw, ("rfm",))
        defaults = RfmConfig()
        self.unknown(("rfm",), table, set(defaults.__dataclass_fields__))
        model = self.string(table, ("rfm", "model"), defaults.model)
        if model not in BUILTIN_MODELS and model not in custom_models:
            known = ", ".join([*BUILTIN_MODELS, *sorted(custom_models)])
            self.fail(("rfm", "model"), f"unknown model {model!r} (known: {known})")
            model = defaults.model
        split = self.string(table, ("rfm", "cn8_split"), defaults.cn8_split, ("mean", "median", "fixed"))
        fixed = None
        if "cn8_fixed" in table or split == "fixed":
            fixed_table = table.get("cn8_fixed")
            if not isinstance(fixed_table, dict):
                self.fail(("rfm", "cn8_fixed"), "expected a table with recency_days, frequency and monetary")
            else:
                names = ("recency_days", "frequency", "monetary")
                self.unknown(("rfm", "cn8_fixed"), fixed_table, set(names))
                fixed = {}
                for name in names:
                    if name not in fixed_table:
                        self.fail(("rfm", "cn8_fixed", name), "missing")
                        continue
                    fixed[name] = self.number(fixed_table, ("rfm", "cn8_fixed", name), 0.0, 0.0, None)
        return RfmConfig(
            model=model,
            lookback_days=self.integer(table, ("rfm", "lookback_days"), defaults.lookback_days, 1),
            f_cutoffs=self.ascending(table, ("rfm", "f_cutoffs"), defaults.f_cutoffs, 4, int),
            small_population=self.integer(table, ("rfm", "small_population"), defaults.small_population, 0),
            r_fallback_days=self.ascending(table, ("rfm", "r_fallback_days"), defaults.r_fallback_days, 4, int),
            m_fallback_multiples=self.ascending(
                table, ("rfm", "m_fallback_multiples"), defaults.m_fallback_multiples, 4, float
            ),
            cn8_split=split,
            cn8_fixed=fixed,
        )

    def lifecycle(self, raw: dict) -> LifecycleConfig:
        table = self.table(raw, ("lifecycle",))
        defaults = LifecycleConfig()
        self.unknown(("lifecycle",), table, set(defaults.__dataclass_fields__))
        values = {
            name: self.integer(table, ("lifecycle", name), getattr(defaults, name), 1)
            for name in defaults.__dataclass_fields__
        }
        if values["churned_days"] <= values["dormant_days"]:
            self.fail(("lifecycle", "churned_days"), "must be greater than dormant_days")
        return LifecycleConfig(**values)

    def tags(self, raw: dict) -> TagsConfig:
        table = self.table(raw, ("tags",))
        defaults = TagsConfig()
        self.unknown(("tags",), table, set(defaults.__dataclass_fields__))
        values: dict[str, Any] = {}
        for name, spec in defaults.__dataclass_fields__.items():
            default = getattr(defaults, name)
            if spec.type == "float" or isinstance(default, float):
                high = 1.0 if name.endswith("_share") else None
                values[name] = self.number(table, ("tags", name), default, 0.0, high)
            else:
                values[name] = self.integer(table, ("tags", name), default, 1,
                                            5 if name.endswith("_score") else None)
        return TagsConfig(**values)

    def caps(self, raw: dict, model: str, custom: dict[str, tuple[SegmentRule, ...]]) -> tuple[CapRule, ...]:
        if "caps" not in raw:
            return DEFAULT_CAPS
        rules = raw["caps"]
        if not isinstance(rules, list):
            self.fail(("caps",), "expected [[caps]] tables")
            return DEFAULT_CAPS
        out = []
        for index, rule in enumerate(rules):
            keypath = ("caps", index)
            if not isinstance(rule, dict):
                self.fail(keypath, "expected a table")
                continue
            self.unknown(keypath, rule, {"channel", "segment", "max", "per"})
            if "max" not in rule:
                self.fail(keypath + ("max",), "missing (how many touches the window allows)")
            channel = self.string(rule, keypath + ("channel",), "any", ("any", *CHANNELS))
            segment = self.cap_segment(rule, keypath + ("segment",), model, custom)
            maximum = self.integer(rule, keypath + ("max",), 1, 0)
            per = self.string(rule, keypath + ("per",), "day", tuple(CAP_PERIODS))
            out.append(CapRule(channel=channel, segment=segment, max=maximum, per=per))
        return tuple(out)

    def cap_segment(self, rule: dict, keypath: tuple, model: str,
                    custom: dict[str, tuple[SegmentRule, ...]]) -> str:
        """A segment of the model in use (its English or Chinese name), or "any".

        A misspelt segment would match nobody and silently switch the cap off.
        """
        from core.labels import segment_label, segment_names  # no polars: config is read everywhere

        value = self.string(rule, keypath, "any")
        if model in custom:
            known = [*dict.fromkeys(segment_names(model, (item.name for item in custom[model])))]
        else:
            known = segment_names(model if model == "cn8" else "rf11")
        by_label = {segment_label(name, "zh"): name for name in known}
        if value == "any" or value in known:
            return value
        if value in by_label:
            return by_label[value]
        near = [name for name in known if name.lower() == value.lower()]
        hint = f" (did you mean '{near[0]}'?)" if near else f" (the {model} segments: {', '.join(known)})"
        self.fail(keypath, f"no segment {value!r} in the model {model!r}{hint}")
        return value

    def quiet_hours(self, raw: dict) -> QuietHours:
        table = self.table(raw, ("quiet_hours",))
        self.unknown(("quiet_hours",), table, {"start", "end"})
        values = {}
        for name in ("start", "end"):
            value = self.string(table, ("quiet_hours", name), getattr(QuietHours(), name))
            if not _TIME.match(value):
                self.fail(("quiet_hours", name), f"expected a time as HH:MM, got {value!r}")
                value = getattr(QuietHours(), name)
            values[name] = value
        return QuietHours(**values)

    def send(self, raw: dict) -> SendConfig:
        table = self.table(raw, ("send",))
        self.unknown(("send",), table, {"drop_tolerance", "attribution_days"})
        return SendConfig(
            drop_tolerance=self.number(table, ("send", "drop_tolerance"), 0.05, 0.0, 1.0),
            attribution_days=self.integer(table, ("send", "attribution_days"), 7, 1),
        )

    def delivery(self, raw: dict) -> DeliveryConfig:
        table = self.table(raw, ("delivery",))
        self.unknown(("delivery",), table, {"dir", "webhook_url"})
        directory = self.string(table, ("delivery", "dir"), "outbox")
        url = self.string(table, ("delivery", "webhook_url"), "")
        problem = webhook_problem(url) if url else None
        if problem:
            self.fail(("delivery", "webhook_url"), f"{problem}, got {url!r}")
            url = ""
        return DeliveryConfig(dir=directory or "outbox", webhook_url=url)

    def segments(self, raw: dict) -> dict[str, tuple[SegmentRule, ...]]:
        table = self.table(raw, ("segments",))
        maps: dict[str, tuple[SegmentRule, ...]] = {}
        for map_name, rules in table.items():
            keypath = ("segments", map_name)
            if map_name in BUILTIN_MODELS:
                self.fail(keypath, f"{map_name!r} is a built-in model; choose another name")
                continue
            if not isinstance(rules, list) or not rules:
                self.fail(keypath, "expected one or more [[segments.NAME]] tables")
                continue
            parsed = []
            for index, rule in enumerate(rules):
                rule_path = keypath + (index,)
                if not isinstance(rule, dict):
                    self.fail(rule_path, "expected a table")
                    continue
                self.unknown(rule_path, rule, {"name", "r", "f", "m"})
                name = rule.get("name")
                if not isinstance(name, str) or not name.strip():
                    self.fail(rule_path + ("name",), "missing (every rule needs a segment name)")
                    continue
                ranges = {axis: self._score_range(rule, rule_path + (axis,)) for axis in ("r", "f", "m")}
                parsed.append(SegmentRule(name=name.strip(), **ranges))
            if parsed:
                maps[map_name] = tuple(parsed)
                self.warnings.extend(segment_map_warnings(map_name, maps[map_name]))
        return maps

    def _score_range(self, rule: dict, keypath: tuple) -> tuple[int, int]:
        value = rule.get(keypath[-1], "1-5")
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        match = _RANGE.match(value) if isinstance(value, str) else None
        if not match:
            self.fail(keypath, f"expected a score or a range like \"3-5\", got {value!r}")
            return (1, 5)
        low = int(match.group(1))
        high = int(match.group(2) or low)
        if high < low:
            self.fail(keypath, f"range runs backwards: {value!r}")
            return (1, 5)
        return (low, high)


def webhook_problem(url: str) -> str | None:
    """What is wrong with a webhook URL (None if nothing): checked here so a send never meets it."""
    from urllib.parse import urlsplit

    if any(ch.isspace() or not ch.isprintable() for ch in url):
        return "a URL cannot hold spaces or control characters"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises for a port out of range or not a number)
    except ValueError as exc:
        return f"not a usable URL ({exc})"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "expected an http:// or https:// URL with a host"
    return None


def segment_map_warnings(map_name: str, rules: tuple[SegmentRule, ...]) -> list[str]:
    """Name the overlapping and uncovered R x F x M cells of a custom map."""
    owners: dict[tuple[int, int, int], list[str]] = {}
    for rule in rules:
        for r in range(rule.r[0], rule.r[1] + 1):
            for f in range(rule.f[0], rule.f[1] + 1):
                for m in range(rule.m[0], rule.m[1] + 1):
                    owners.setdefault((r, f, m), []).append(rule.name)
    uses_m = any(rule.m != (1, 5) for rule in rules)
    warnings = []
    overlapping = sorted(cell for cell, names in owners.items() if len(names) > 1)
    if overlapping:
        cells = _describe_cells(overlapping, uses_m, owners)
        warnings.append(
            f"segment map {map_name!r}: overlapping cells (first match wins): {cells}"
        )
    every = {(r, f, m) for r in range(1, 6) for f in range(1, 6) for m in range(1, 6)}
    uncovered = sorted(every - set(owners))
    if uncovered:
        cells = _describe_cells(uncovered, uses_m, None)
        warnings.append(f"segment map {map_name!r}: uncovered cells go to 'Other': {cells}")
    return warnings


def _describe_cells(cells: list, uses_m: bool, owners: dict | None) -> str:
    """Name every cell compactly: runs of the last axis collapse, e.g. ``R4F1-3``."""
    def label_of(cell: tuple) -> str:
        return "" if owners is None else " (" + " > ".join(dict.fromkeys(owners[cell])) + ")"

    if uses_m:
        keyed = [((r, f), m, label_of((r, f, m))) for r, f, m in cells]
        prefix = lambda key: f"R{key[0]}F{key[1]}M"  # noqa: E731
    else:
        flat = sorted({(r, f) for r, f, _ in cells})
        keyed = [((r,), f, label_of((r, f, 1))) for r, f in flat]
        prefix = lambda key: f"R{key[0]}F"  # noqa: E731
    parts: list[str] = []
    run: list = []
    for key, value, label in keyed + [(None, None, None)]:
        if run and (key != run[0][0] or label != run[0][2] or value != run[-1][1] + 1):
            low, high = run[0][1], run[-1][1]
            span = f"{low}" if low == high else f"{low}-{high}"
            parts.append(f"{prefix(run[0][0])}{span}{run[0][2]}")
            run = []
        if key is not None:
            run.append((key, value, label))
    return ", ".join(parts)


def _closest(key: str, known: set[str]) -> str | None:
    import difflib

    matches = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.75)
    return matches[0] if matches else None


_HEADER = re.compile(r"^\s*\[(\[)?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_\-]+|\"[^\"]*\")\s*=")


def _key_lines(text: str) -> dict[tuple, int]:
    """Map key paths to the line that defines them (1-based), for messages."""
    lines: dict[tuple, int] = {}
    current: tuple = ()
    array_counts: dict[tuple, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header:
            parts = tuple(part.strip().strip('"') for part in header.group(2).split("."))
            if header.group(1):  # [[array.of.tables]]
                index = array_counts.get(parts, 0)
                array_counts[parts] = index + 1
                current = parts + (index,)
            else:
                current = parts
            lines.setdefault(current, number)
            lines.setdefault(parts, number)
            continue
        key = _KEY.match(line)
        if key:
            lines.setdefault(current + (key.group(1).strip('"'),), number)
    return lines
