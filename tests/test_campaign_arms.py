"""Holdout and variants: a stable hash of (campaign, customer), the same everywhere, for ever."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from core import arms

ROOT = Path(__file__).resolve().parents[1]

# Fixed answers: if any of these change, every running experiment's arms would move.
EXPECTED_MIX = {(7, 1): 4414019431610648415, (7, 2): 5090977316425868581, (7, 3): 7758145696617331093}
EXPECTED_BUCKETS = {(7, 1): 2392, (7, 2): 2759, (7, 3): 4205, (7, 4): 5563, (7, 5): 5341}
EXPECTED_VARIANTS = {(7, 1): 0, (7, 2): 0, (7, 3): 0, (7, 4): 1, (7, 5): 0}


def test_fixed_hashes_and_buckets():
    for key, value in EXPECTED_MIX.items():
        assert arms.mix(*key) == value
    for key, value in EXPECTED_BUCKETS.items():
        assert arms.holdout_bucket(*key) == value
    for key, value in EXPECTED_VARIANTS.items():
        assert arms.variant_index(*key, 2) == value


def test_vectorised_buckets_match_the_reference():
    customers = np.array([1, 2, 3, 4, 5])
    holdout, low = arms.buckets(7, customers)
    assert holdout.tolist() == [EXPECTED_BUCKETS[(7, c)] for c in customers.tolist()]
    assert (((low * np.uint64(2)) >> np.uint64(32)).tolist()) == [EXPECTED_VARIANTS[(7, c)] for c in range(1, 6)]


@settings(max_examples=50, deadline=None)
@given(campaign=st.integers(1, 2**31), customers=st.lists(st.integers(1, 2**31), min_size=1, max_size=50))
def test_vectorised_equals_plain_python(campaign, customers):
    holdout, low = arms.buckets(campaign, np.array(customers))
    assert holdout.tolist() == [arms.holdout_bucket(campaign, customer) for customer in customers]
    assert [int(x) for x in ((low * np.uint64(3)) >> np.uint64(32))] == [
        arms.variant_index(campaign, customer, 3) for customer in customers]


def test_the_same_in_another_process_with_another_hash_seed():
    code = ("from core import arms; import numpy as np; "
            "print(arms.buckets(7, np.array([1, 2, 3, 4, 5]))[0].tolist())")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True,
                            env={"PYTHONHASHSEED": "12345", "PATH": "/usr/bin:/bin"})
    assert result.stdout.strip() == str([EXPECTED_BUCKETS[(7, c)] for c in range(1, 6)])


def test_shares_are_close_to_what_was_asked():
    customers = pl.Series(np.arange(1, 100_001))
    assigned = arms.assign(42, customers, 10.0, ("A", "B"))
    counts = dict(assigned.value_counts().iter_rows())
    assert 9_500 < counts["control"] < 10_500
    assert abs(counts["A"] - counts["B"]) < 2_000
    assert set(counts) == {"A", "B", "control"}


def test_another_campaign_draws_another_control_group():
    customers = np.arange(1, 10_001)
    first, _ = arms.codes(1, customers, 20.0, ())
    second, _ = arms.codes(2, customers, 20.0, ())
    overlap = ((first == 1) & (second == 1)).sum()
    assert 250 < overlap < 550  # independent: about 20% of 20% of 10,000


def test_no_holdout_means_no_control():
    codes, names = arms.codes(3, np.arange(1, 1001), 0.0, ())
    assert names == ["treatment", "control"] and (codes == 0).all()
