import io
import json

import polars as pl
from typer.testing import CliRunner

from console.cli import app
from tests.conftest import AS_OF
from tests.factories import Shop, days_before

runner = CliRunner()


def invoke(store, *args):
    return runner.invoke(app, [*map(str, args), "--db", str(store.path)])


def test_customers_export_carries_identity_and_reading(store, as_user, tmp_path):
    shop = Shop(store)
    ann = shop.customer("C1", name="Ann", email="ann@example.com")
    shop.orders(ann, days_before(AS_OF, 1, 2), total=12.3, discount=1)
    shop.customer("C2", name="Bo")
    before = pl.read_csv(io.BytesIO(invoke(store, "export", "customers").stdout_bytes))
    assert before.height == 2 and before["segment"].null_count() == 2
    assert invoke(store, "refresh", "--as-of", AS_OF).exit_code == 0
    result = invoke(store, "export", "customers", "--format", "csv")
    assert result.exit_code == 0, result.output
    frame = pl.read_csv(io.BytesIO(result.stdout_bytes), schema_overrides={"monetary": pl.String})
    assert frame.columns[:2] == ["customer_id", "name"]
    for column in ("recency_days", "frequency", "monetary", "r_score", "f_score", "m_score", "segment",
                   "lifecycle", "tags", "as_of"):
        assert column in frame.columns
    ann_row = frame.filter(pl.col("customer_id") == "C1").row(0, named=True)
    assert ann_row["monetary"] == "24.60" and ann_row["frequency"] == 2 and ann_row["as_of"] == AS_OF.isoformat()
    assert ann_row["tags"] == "price-sensitive"
    for tag in ("vip", "a-list"):  # manual tags go out with the rule tags, sorted
        assert invoke(store, "tag", "add", "C1", tag, "--note", "met at the fair").exit_code == 0
    frame = pl.read_csv(io.BytesIO(invoke(store, "export", "customers").stdout_bytes))
    assert frame.filter(pl.col("customer_id") == "C1")["tags"].item() == "a-list;price-sensitive;vip"
    parquet = tmp_path / "c.parquet"
    assert invoke(store, "export", "customers", "-f", "parquet", "-o", parquet).exit_code == 0
    assert pl.read_parquet(parquet).height == 2
    data = json.loads(invoke(store, "export", "orders", "--format", "json").stdout)
    assert {row["net"] for row in data} == {"12.30"}


def test_export_is_for_owners_and_operators(store, as_user):
    from core.users import add_user, current_user
    from tests.conftest import NOW

    add_user(store, current_user(store), "sam", "support", NOW)
    as_user("sam")
    result = invoke(store, "export", "customers")
    assert result.exit_code == 2 and "may not export" in result.stderr
