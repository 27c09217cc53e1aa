"""Why a customer reads the way they do: orders used, scores, cut points, the rules that fired."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable, Mapping

from rich.text import Text
from textual import work
from textual.containers import VerticalScroll
from textual.widget import Widget
from textual.widgets import Static

from console.messages import ExplanationLoaded, freeze
from console.screens.base import TierdeskScreen
from console.session import opened

if TYPE_CHECKING:
    from core.customers import Match

USED_MARKS = {"counted": "✓", "excluded": "✗"}


def explanation_text(data: Mapping[str, Any], *, language: str, currency: str) -> Text:
    """The explanation as text: the scores and the rules that fired first, the orders behind them last."""
    from core import labels, lifecycle, segments
    from core.money import format_cents

    money = lambda cents: format_cents(cents, currency) or "–"  # noqa: E731
    window = data["window"]
    text = Text()
    text.append(f"Why {data['name'] or ''} ({data['customer_id']}) reads this way at {data['as_of']}\n", style="bold")
    text.append(f"from {data['source']}; window {window['start']} .. {window['end']} ({window['days']} days)\n\n",
                style="dim")
    text.append("Scores\n", style="bold")
    for line in data["scores"]:
        value = line["value"]
        shown = "–" if value is None else (money(value) if line["score"] == "M" else f"{value:,}")
        unit = " days" if line["score"] == "R" and value is not None else ""
        assigned = "–" if line["assigned"] is None else line["assigned"]
        text.append(f"  {line['score']} = {shown}{unit} → score {assigned}", style="bold")
        text.append(f"  ({line['rule']})", style="dim")
        if line["band"]:
            low, high, count = line["band"]
            if line["score"] == "M":
                low, high = money(low), money(high)
            text.append(f"  band {low}..{high} holds {count:,}", style="dim")
        text.append("\n")
    text.append(f"  AOV {money(data['facts']['aov_cents'])}\n\n")
    segment = segments.label(data["segment"], language) if data["segment"] else "(not in the reading)"
    text.append("Segment ", style="bold")
    text.append(f"{segment}: {labels.named_in(data['segment_rule'], language)}\n")
    text.append("Lifecycle ", style="bold")
    text.append(f"{lifecycle.label(data['lifecycle'], language)}: the first rule that matches\n")
    for step in data["lifecycle_trace"]:
        mark = "→" if step["chosen"] else ("✓" if step["matched"] else "·")
        text.append(f"  {mark} {lifecycle.label(step['stage'], language)}: {step['rule']}\n")
        if step["chosen"]:
            break
    text.append("Tags\n", style="bold")
    for rule in data["tags"]:
        text.append(f"  {'✓' if rule['fired'] else '·'} {rule['tag']}: {rule['rule']}\n")
    for tag in data["manual_tags"]:
        text.append(f"  ✓ {tag['tag']} (manual, by {tag['added_by']}: {tag['note']})\n")
    text.append("\n")
    text.append("Orders\n", style="bold")
    if not data["orders"]:
        text.append("  none\n")
    for order in data["orders"]:
        verdict = order["used"] if order["used"] != "excluded" else f"excluded: {order['reason']}"
        text.append(f"  {USED_MARKS.get(order['used'], '·')} {order['order_id'] or '':<14} {order['date']}  "
                    f"{money(order['net_cents']):>12}  {verdict}\n")
    return text


class WhyScreen(TierdeskScreen):
    """``core.explain.explain`` for one customer at the latest reading."""

    def __init__(self, match: "Match", *, trail: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.match = match
        self.trail = trail
        self.data: Mapping[str, Any] | None = None

    def crumbs(self) -> Iterable[str]:
        return (*self.trail, "why")

    def compose_body(self) -> Iterable[Widget]:
        with VerticalScroll(id="why"):
            yield Static("", id="explanation")

    def on_mount(self) -> None:
        self.query_one("#explanation", Static).update(Text("… explaining", style="dim"))
        self.query_one("#why").focus()
        self.watch(self.app, "language", lambda _: self._draw(), init=False)
        self.load()

    @work(thread=True, exclusive=True, exit_on_error=False, group="why", description="Explaining")
    def load(self) -> None:
        from core import explain

        with opened(self.tierdesk.db_path) as store:
            data = explain.explain(store, self.match)
        self.post_message(ExplanationLoaded(self.match, freeze(data)))

    def on_explanation_loaded(self, message: ExplanationLoaded) -> None:
        self.data = message.explanation
        self._draw()

    def _draw(self) -> None:
        if self.data is None:
            return
        session = self.tierdesk.session
        self.query_one("#explanation", Static).update(explanation_text(
            self.data, language=self.tierdesk.language, currency=session.currency if session else "$"))
