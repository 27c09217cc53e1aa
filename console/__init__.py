"""tierdesk's two front ends over ``core``: the typer CLI and the Textual console."""
