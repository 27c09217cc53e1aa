"""Display names in English and Chinese (``language = "zh"``), without polars.

Stored values are the English names; these only change what is shown.
"""

from __future__ import annotations

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

# The segments each built-in model assigns (core.segments defines the rules; a test keeps the two
# in step), for checks that must not load polars, such as the config's.
MODEL_SEGMENTS = {
    "rf11": ("Champions", "Loyal", "Potential loyalist", "New", "Promising", "Need attention", "About to sleep",
             "At risk", "Can't lose", "Hibernating", "Lost", "Prospect"),
    "cn8": ("Important value", "Important develop", "Important retain", "Important win-back", "General value",
            "General develop", "General retain", "General win-back", "Lost", "Prospect"),
}
CUSTOM_EXTRA = ("Other", "Lost", "Prospect")  # what a custom map assigns beyond its rules' names

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
