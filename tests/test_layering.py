"""core is a library: it must never pull in a UI package."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_core_does_not_import_ui_packages():
    modules = sorted(
        f"core.{path.stem}" for path in (ROOT / "core").glob("*.py") if path.stem != "__init__"
    )
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'typer', 'rich', 'console', 'click'))\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert result.stdout.strip() == ""


def loaded_after(code: str, packages: tuple[str, ...]) -> list[str]:
    """The modules of ``packages`` a fresh interpreter has loaded after running ``code``."""
    probe = (f"{code}\nimport sys\n"
             f"print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in {packages!r})))\n")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, check=True)
    return [name for name in result.stdout.strip().split(",") if name]


def test_help_does_not_import_textual_or_polars():
    code = "from console.cli import app\nfrom typer.testing import CliRunner\nCliRunner().invoke(app, ['--help'])"
    assert loaded_after(code, ("textual", "polars", "sqlite_utils")) == []


def test_a_customer_lookup_does_not_import_polars():
    """`tierdesk customer X` must answer mid-call: reading the config (caps included) stays light."""
    code = (
        "from core.config import default_config_text, parse_config\n"
        "parse_config(default_config_text('UTC') + '[[caps]]\\nsegment = \"冠军客户\"\\nmax = 1\\n')\n"
        "import core.customers, core.users, core.store"
    )
    assert loaded_after(code, ("polars", "numpy", "pyarrow")) == []


def test_the_light_segment_names_match_the_models():
    from core import segments
    from core.config import Config
    from core.labels import MODEL_SEGMENTS

    for model in ("rf11", "cn8"):
        assert sorted(MODEL_SEGMENTS[model]) == sorted(segments.names(model, Config()))
