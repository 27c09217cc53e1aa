"""Display names in English and Chinese (``language = "zh"``), without polars.

Stored values are the English names; these only change what is shown.
"""

from __future__ import annotations

from typing import Iterable

SEGMENT_ZH = {
    "Champions": "冠军客户",
    "Loyal": "忠诚客户",
    "Potential loyalist": "潜力忠诚客户",
    "New": "新客户",
    "Promising": "有望客户",
    "Need attention": "需要关注",
    "About to sleep": "即将沉睡",
    "At risk": "流失风险",
    "Can't lose": "不能失去",
    "Hibernating": "休眠客户",
    "Lost": "已流失",
    "Prospect": "潜在客户",
    "Other": "其他",
    "Important value": "重要价值客户",
    "Important develop": "重要发展客户",
    "Important retain": "重要保持客户",
    "Important win-back": "重要挽留客户",
    "General value": "一般价值客户",
    "General develop": "一般发展客户",
    "General retain": "一般保持客户",
    "General win-back": "一般挽留客户",
}

LOST = "Lost"
PROSPECT = "Prospect"
OTHER = "Other"

# The built-in models' segments (core.segments assigns them with polars; they live here, without
# it, for checks that must stay light, such as the config's).
# (name, R range, F range), a complete partition of the 5 x 5 grid; the one
# exception (Hibernating without R1 F1) is handled by listing Lost first.
RF11: tuple[tuple[str, tuple[int, int], tuple[int, int]], ...] = (
    ("Champions", (5, 5), (4, 5)),
    ("Loyal", (3, 4), (4, 5)),
    ("Potential loyalist", (4, 5), (2, 3)),
    ("New", (5, 5), (1, 1)),
    ("Promising", (4, 4), (1, 1)),
    ("Need attention", (3, 3), (3, 3)),
    ("About to sleep", (3, 3), (1, 2)),
    ("At risk", (1, 2), (3, 4)),
    ("Can't lose", (1, 2), (5, 5)),
    (LOST, (1, 1), (1, 1)),
    ("Hibernating", (1, 2), (1, 2)),
)

# (name, R high, F high, M high)
CN8: tuple[tuple[str, bool, bool, bool], ...] = (
    ("Important value", True, True, True),
    ("Important develop", True, False, True),
    ("Important retain", False, True, True),
    ("Important win-back", False, False, True),
    ("General value", True, True, False),
    ("General develop", True, False, False),
    ("General retain", False, True, False),
    ("General win-back", False, False, False),
)


def segment_names(model: str, rules: "Iterable[str]" = ()) -> list[str]:
    """Every segment a model can assign, in display order (unscored last); ``rules`` are a custom map's."""
    if model == "rf11":
        ordered = [name for name, _, _ in RF11 if name != LOST] + [LOST]
    elif model == "cn8":
        ordered = [name for name, *_ in CN8] + [LOST]
    else:
        ordered = list(dict.fromkeys(rules)) + [OTHER, LOST]
    return ordered + [PROSPECT]


MODEL_SEGMENTS = {model: tuple(segment_names(model)) for model in ("rf11", "cn8")}

STAGE_ZH = {
    "new": "新客",
    "prospect": "潜客",
    "churned": "流失",
    "dormant": "沉睡",
    "active": "活跃",
    "occasional": "偶购",
}


def named_in(text: str, language: str) -> str:
    """An explanation in English with the segment names it mentions in the shop's language."""
    if language != "zh":
        return text
    for name in sorted(SEGMENT_ZH, key=len, reverse=True):  # "Potential loyalist" before "Loyal"
        text = text.replace(name, SEGMENT_ZH[name])
    return text


def segment_label(name: str | None, language: str) -> str:
    if name is None:
        return ""
    return SEGMENT_ZH.get(name, name) if language == "zh" else name


def stage_label(stage: str | None, language: str) -> str:
    if stage is None:
        return ""
    return STAGE_ZH.get(stage, stage) if language == "zh" else stage
