"""A radio button whose state reads as a symbol, not a colour."""

from __future__ import annotations

from textual.widgets import RadioButton

CHOSEN = "●"
NOT_CHOSEN = "○"


class Choice(RadioButton):
    """``●`` when chosen, ``○`` when not.

    Textual's radio button draws ``●`` either way and tells the two apart by
    colour alone, which ``NO_COLOR`` and a grey theme lose.
    """

    BUTTON_INNER = NOT_CHOSEN

    def watch_value(self) -> None:
        self.BUTTON_INNER = CHOSEN if self.value else NOT_CHOSEN
        super().watch_value()
