"""tierdesk core: the store, the definitions and the rules, with no UI.

Nothing in this package imports textual, typer or rich; the CLI and the
console are thin shells over it (a test enforces this).
"""

__version__ = "0.1.0"
