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


def test_help_does_not_import_textual_or_polars():
    code = (
        "import sys\n"
        "from console.cli import app\n"
        "from typer.testing import CliRunner\n"
        "CliRunner().invoke(app, ['--help'])\n"
        "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'polars', 'sqlite_utils'))))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert result.stdout.strip() == ""


def test_a_customer_lookup_does_not_import_polars(tmp_path):
    """`tierdesk customer X` must answer mid-call: reading the config (caps included) stays light."""
    code = (
        "import sys\n"
        "from core.config import default_config_text, parse_config\n"
        "parse_config(default_config_text('UTC') + '[[caps]]\\nsegment = \"冠军客户\"\\nmax = 1\\n')\n"
        "import core.customers, core.users, core.store\n"
        "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in ('polars', 'numpy', 'pyarrow'))))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert result.stdout.strip() == ""


def test_the_light_segment_names_match_the_models():
    from core import segments
    from core.config import Config
    from core.labels import MODEL_SEGMENTS

    for model in ("rf11", "cn8"):
        assert sorted(MODEL_SEGMENTS[model]) == sorted(segments.names(model, Config()))
