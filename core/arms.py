"""Holdout and variants: a stable hash of (campaign, customer) picks the arm.

The hash is SplitMix64's finaliser, written out here, so the same campaign
and customer land in the same arm in every process, on every machine and
under every library version (neither Python's ``hash`` nor polars' hash
promise that). :func:`mix` is the reference in plain Python; :func:`buckets`
is the same arithmetic vectorised with numpy's wrapping ``uint64``.

From one 64-bit hash ``h``: the high 32 bits give the holdout bucket in
basis points (``0..9999``; a customer is held out when the bucket is below
``holdout_pct * 100``), the low 32 bits pick the variant.
"""

from __future__ import annotations

import numpy as np
import polars as pl

MASK = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15
M1 = 0xBF58476D1CE4E5B9
M2 = 0x94D049BB133111EB
BASIS_POINTS = 10_000

CONTROL = "control"
TREATMENT = "treatment"


def _finalise(x: int) -> int:
    x = (x + GOLDEN) & MASK
    x = ((x ^ (x >> 30)) * M1) & MASK
    x = ((x ^ (x >> 27)) * M2) & MASK
    return x ^ (x >> 31)


def mix(campaign: int, customer: int) -> int:
    """The 64-bit hash of (campaign, customer), in plain Python (the reference)."""
    return _finalise(_finalise(campaign & MASK) ^ (customer & MASK))


def holdout_bucket(campaign: int, customer: int) -> int:
    """0..9999: held out when below ``holdout_pct * 100``."""
    return ((mix(campaign, customer) >> 32) * BASIS_POINTS) >> 32


def variant_index(campaign: int, customer: int, variants: int) -> int:
    """0..variants-1: which treatment arm a customer who is not held out gets."""
    return ((mix(campaign, customer) & 0xFFFFFFFF) * variants) >> 32


def _finalise_array(x: np.ndarray) -> np.ndarray:
    """:func:`_finalise` over a uint64 array, in place (array arithmetic wraps mod 2**64)."""
    scratch = np.empty_like(x)
    x += np.uint64(GOLDEN)
    np.right_shift(x, np.uint64(30), out=scratch)
    x ^= scratch
    x *= np.uint64(M1)
    np.right_shift(x, np.uint64(27), out=scratch)
    x ^= scratch
    x *= np.uint64(M2)
    np.right_shift(x, np.uint64(31), out=scratch)
    x ^= scratch
    return x


def buckets(campaign: int, customers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised :func:`mix`: (holdout bucket 0..9999, low 32 bits) per customer."""
    seed = np.uint64(_finalise(campaign & MASK))
    hashed = customers.astype(np.uint64)  # a copy: finalised in place
    hashed ^= seed
    hashed = _finalise_array(hashed)
    holdout = ((hashed >> np.uint64(32)) * np.uint64(BASIS_POINTS)) >> np.uint64(32)
    low = hashed & np.uint64(0xFFFFFFFF)
    return holdout.astype(np.int64), low


def codes(campaign: int, customers: np.ndarray, holdout_pct: float,
          variants: tuple[str, ...]) -> tuple[np.ndarray, list[str]]:
    """Each customer's arm as a code into the returned names; the last name is ``control``."""
    holdout, low = buckets(campaign, customers.astype(np.int64))
    threshold = int(round(holdout_pct * 100))
    names = [*(variants or (TREATMENT,)), CONTROL]
    treatment_arms = np.uint64(len(names) - 1)
    index = ((low * treatment_arms) >> np.uint64(32)).astype(np.int64)
    index[holdout < threshold] = len(names) - 1
    return index, names


def assign(campaign: int, customers: pl.Series, holdout_pct: float, variants: tuple[str, ...]) -> pl.Series:
    """The arm of each customer: ``control``, or ``treatment`` / one of ``variants``."""
    index, names = codes(campaign, customers.to_numpy(), holdout_pct, variants)
    return pl.Series("arm", names, dtype=pl.String).gather(pl.Series(index, dtype=pl.Int64))
