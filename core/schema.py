"""The store's schema and its forward migrations.

Migrations run through sqlite-utils' ``Migrations`` (each one atomic with its
record in ``_sqlite_migrations``); ``PRAGMA user_version`` mirrors how many
have run, so a store written by a newer tierdesk is refused instead of being
misread. Money is integer cents; instants are Unix seconds (UTC); shop days
are ISO dates.

``changes`` logs the rowid of every updated or deleted customer, order and
event (by trigger, so even an outside tool's edits are seen): the columnar
read path (``core.fastread``) patches its copy from it instead of re-reading
whole tables.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:  # sqlite_utils costs ~0.2 s to import: only migrations need it
    from sqlite_utils import Database

_V1 = [
    """CREATE TABLE meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    )""",
    """CREATE TABLE users (
        login TEXT PRIMARY KEY,
        role TEXT NOT NULL CHECK (role IN ('owner', 'operator', 'support', 'viewer')),
        added_by TEXT NOT NULL,
        added_at INTEGER NOT NULL
    )""",
    """CREATE TABLE customers (
        id INTEGER PRIMARY KEY,
        customer_id TEXT NOT NULL UNIQUE,
        name TEXT,
        email TEXT,
        phone TEXT,
        region TEXT,
        timezone TEXT,
        signed_up_at INTEGER,
        -- consent per channel: 1 opted in, 0 not given, -1 opted out
        accepts_email INTEGER NOT NULL DEFAULT 0 CHECK (accepts_email IN (-1, 0, 1)),
        accepts_sms INTEGER NOT NULL DEFAULT 0 CHECK (accepts_sms IN (-1, 0, 1)),
        accepts_push INTEGER NOT NULL DEFAULT 0 CHECK (accepts_push IN (-1, 0, 1)),
        accepts_wecom INTEGER NOT NULL DEFAULT 0 CHECK (accepts_wecom IN (-1, 0, 1)),
        created_at INTEGER NOT NULL,
        source TEXT
    )""",
    "CREATE INDEX customers_email ON customers (email)",
    "CREATE INDEX customers_phone ON customers (phone)",
    "CREATE INDEX customers_name ON customers (name COLLATE NOCASE)",
    """CREATE TABLE orders (
        id INTEGER PRIMARY KEY,
        order_id TEXT NOT NULL UNIQUE,
        customer INTEGER NOT NULL REFERENCES customers (id),
        placed_at INTEGER NOT NULL,
        total_cents INTEGER NOT NULL CHECK (total_cents >= 0),
        discount_cents INTEGER NOT NULL DEFAULT 0 CHECK (discount_cents >= 0),
        refunded_cents INTEGER NOT NULL DEFAULT 0 CHECK (refunded_cents >= 0),
        status TEXT NOT NULL DEFAULT 'paid'
            CHECK (status IN ('paid', 'pending', 'cancelled', 'voided', 'test', 'staff')),
        category TEXT,
        import_id INTEGER
    )""",
    "CREATE INDEX orders_customer ON orders (customer, placed_at)",
    """CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        customer INTEGER NOT NULL REFERENCES customers (id),
        kind TEXT NOT NULL
            CHECK (kind IN ('view', 'cart', 'favorite', 'share', 'review', 'live', 'community')),
        at INTEGER NOT NULL,
        category TEXT NOT NULL DEFAULT '',
        import_id INTEGER,
        UNIQUE (customer, kind, at, category)
    )""",
    """CREATE TABLE consent_events (
        id INTEGER PRIMARY KEY,
        customer INTEGER NOT NULL REFERENCES customers (id),
        channel TEXT NOT NULL CHECK (channel IN ('email', 'sms', 'push', 'wecom')),
        state INTEGER NOT NULL CHECK (state IN (-1, 0, 1)),
        source TEXT NOT NULL,
        at INTEGER NOT NULL,
        note TEXT
    )""",
    "CREATE INDEX consent_events_customer ON consent_events (customer, at)",
    """CREATE TABLE refreshes (
        id INTEGER PRIMARY KEY,
        as_of TEXT NOT NULL,
        started_at INTEGER NOT NULL,
        finished_at INTEGER,
        lookback_days INTEGER NOT NULL,
        model TEXT NOT NULL,
        population INTEGER NOT NULL DEFAULT 0,
        scored INTEGER NOT NULL DEFAULT 0,
        method TEXT NOT NULL DEFAULT '{}',
        cut_points TEXT NOT NULL DEFAULT '{}',
        counts TEXT NOT NULL DEFAULT '{}',
        config_hash TEXT NOT NULL,
        actor TEXT
    )""",
    # The current reading. Only what changes when the customer's story changes
    # is stored, so a daily refresh rewrites the few rows that moved; values
    # that follow from the as-of (recency, churn risk, CLV) are derived on
    # read (the customer_reading view, core.reading).
    """CREATE TABLE customer_state (
        customer INTEGER PRIMARY KEY REFERENCES customers (id),
        refresh_id INTEGER NOT NULL REFERENCES refreshes (id),
        first_refresh_id INTEGER NOT NULL REFERENCES refreshes (id),
        first_order_day TEXT,
        last_order_day TEXT,
        frequency INTEGER NOT NULL DEFAULT 0,
        monetary_cents INTEGER NOT NULL DEFAULT 0,
        aov_cents INTEGER,
        r_score INTEGER,
        f_score INTEGER,
        m_score INTEGER,
        segment TEXT NOT NULL,
        lifecycle TEXT NOT NULL,
        tags TEXT NOT NULL DEFAULT ''
    )""",
    "CREATE INDEX customer_state_segment ON customer_state (segment)",
    """CREATE VIEW customer_reading AS
        SELECT s.*, r.as_of,
               CAST(julianday(r.as_of) - julianday(s.last_order_day) AS INTEGER) AS recency_days
        FROM customer_state AS s,
             (SELECT as_of FROM refreshes ORDER BY id DESC LIMIT 1) AS r""",
    """CREATE TABLE tier_events (
        id INTEGER PRIMARY KEY,
        customer INTEGER NOT NULL REFERENCES customers (id),
        model TEXT NOT NULL,
        from_segment TEXT,
        to_segment TEXT NOT NULL,
        refresh_id INTEGER NOT NULL REFERENCES refreshes (id),
        as_of TEXT NOT NULL
    )""",
    "CREATE INDEX tier_events_customer ON tier_events (customer, id)",
    "CREATE INDEX tier_events_refresh ON tier_events (refresh_id)",
    """CREATE TABLE lifecycle_events (
        id INTEGER PRIMARY KEY,
        customer INTEGER NOT NULL REFERENCES customers (id),
        from_stage TEXT,
        to_stage TEXT NOT NULL,
        refresh_id INTEGER NOT NULL REFERENCES refreshes (id),
        as_of TEXT NOT NULL
    )""",
    "CREATE INDEX lifecycle_events_customer ON lifecycle_events (customer, id)",
    """CREATE TABLE tag_events (
        id INTEGER PRIMARY KEY,
        customer INTEGER NOT NULL REFERENCES customers (id),
        tag TEXT NOT NULL,
        action TEXT NOT NULL CHECK (action IN ('added', 'removed')),
        source TEXT NOT NULL,
        manual INTEGER NOT NULL DEFAULT 0,
        at INTEGER NOT NULL,
        as_of TEXT,
        refresh_id INTEGER REFERENCES refreshes (id),
        note TEXT
    )""",
    "CREATE INDEX tag_events_customer ON tag_events (customer, id)",
    """CREATE TABLE manual_tags (
        customer INTEGER NOT NULL REFERENCES customers (id),
        tag TEXT NOT NULL,
        added_by TEXT NOT NULL,
        added_at INTEGER NOT NULL,
        note TEXT,
        PRIMARY KEY (customer, tag)
    )""",
    """CREATE TABLE audit (
        id INTEGER PRIMARY KEY,
        at INTEGER NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT,
        details TEXT NOT NULL DEFAULT '{}',
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
    )""",
    """CREATE TABLE imports (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,
        file TEXT NOT NULL,
        format TEXT NOT NULL,
        encoding TEXT,
        actor TEXT NOT NULL,
        started_at INTEGER NOT NULL,
        finished_at INTEGER,
        rows INTEGER NOT NULL DEFAULT 0,
        inserted INTEGER NOT NULL DEFAULT 0,
        updated INTEGER NOT NULL DEFAULT 0,
        unchanged INTEGER NOT NULL DEFAULT 0,
        rejected INTEGER NOT NULL DEFAULT 0,
        customers_created INTEGER NOT NULL DEFAULT 0,
        status TEXT NOT NULL
    )""",
    """CREATE TABLE import_rejects (
        id INTEGER PRIMARY KEY,
        import_id INTEGER NOT NULL REFERENCES imports (id),
        file TEXT NOT NULL,
        line INTEGER,
        field TEXT,
        reason TEXT NOT NULL,
        raw TEXT
    )""",
    "CREATE INDEX import_rejects_import ON import_rejects (import_id, line)",
    """CREATE TABLE changes (
        seq INTEGER PRIMARY KEY,
        tbl TEXT NOT NULL,
        row INTEGER NOT NULL
    )""",
]

for _table in ("customers", "orders", "events"):
    _V1.append(
        f"""CREATE TRIGGER {_table}_updated AFTER UPDATE ON {_table} BEGIN
            INSERT INTO changes (tbl, row) VALUES ('{_table}', old.id);
        END"""
    )
    _V1.append(
        f"""CREATE TRIGGER {_table}_deleted AFTER DELETE ON {_table} BEGIN
            INSERT INTO changes (tbl, row) VALUES ('{_table}', old.id);
        END"""
    )

# Campaigns (DESIGN "Campaign states", "Touches and caps", "Send"). Touches are
# the ledger caps are read from: append-only (triggers refuse updates and
# deletes), so the columnar copy in core.fastread only ever appends.
_V2 = [
    """CREATE TABLE campaigns (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        audience TEXT NOT NULL,
        channel TEXT NOT NULL CHECK (channel IN ('email', 'sms', 'push', 'wecom')),
        offer TEXT,
        holdout_pct REAL NOT NULL DEFAULT 0 CHECK (holdout_pct >= 0 AND holdout_pct <= 90),
        variants TEXT NOT NULL DEFAULT '',
        priority INTEGER NOT NULL DEFAULT 0,
        obeys_caps INTEGER NOT NULL DEFAULT 1 CHECK (obeys_caps IN (0, 1)),
        counts_toward_caps INTEGER NOT NULL DEFAULT 1 CHECK (counts_toward_caps IN (0, 1)),
        quiet TEXT NOT NULL DEFAULT 'defer' CHECK (quiet IN ('defer', 'drop')),
        send_at INTEGER,
        state TEXT NOT NULL DEFAULT 'draft' CHECK (state IN
            ('draft', 'submitted', 'approved', 'sending', 'sent', 'rejected', 'cancelled')),
        created_by TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        revision INTEGER NOT NULL DEFAULT 1,
        submitted_by TEXT,
        submitted_at INTEGER,
        planned_day TEXT,
        plan_at INTEGER,
        plan_hash TEXT,
        plan_counts TEXT,
        plan_refresh_id INTEGER,
        approved_by TEXT,
        approved_at INTEGER,
        approved_hash TEXT,
        decided_note TEXT,
        send_time INTEGER,
        send_started_at INTEGER,
        sent_at INTEGER,
        adapter TEXT
    )""",
    "CREATE INDEX campaigns_planned ON campaigns (planned_day, state)",
    """CREATE TABLE campaign_members (
        campaign INTEGER NOT NULL REFERENCES campaigns (id),
        customer INTEGER NOT NULL REFERENCES customers (id),
        arm TEXT NOT NULL,
        reason TEXT NOT NULL CHECK (reason IN
            ('sendable', 'deferred', 'no_consent', 'opted_out', 'holdout', 'over_budget', 'quiet_hours')),
        rule TEXT,
        segment TEXT,
        planned_at INTEGER,
        outcome TEXT CHECK (outcome IN ('touched', 'dropped')),
        outcome_reason TEXT,
        PRIMARY KEY (campaign, customer)
    ) WITHOUT ROWID""",
    "CREATE INDEX campaign_members_customer ON campaign_members (customer)",
    """CREATE TABLE touches (
        id INTEGER PRIMARY KEY,
        campaign INTEGER NOT NULL REFERENCES campaigns (id),
        customer INTEGER NOT NULL REFERENCES customers (id),
        channel TEXT NOT NULL CHECK (channel IN ('email', 'sms', 'push', 'wecom')),
        at INTEGER NOT NULL,
        counts INTEGER NOT NULL CHECK (counts IN (0, 1)),
        arm TEXT,
        reserved_at INTEGER NOT NULL,
        UNIQUE (campaign, customer, channel)
    )""",
    # For one customer's touches (profile, budget). Deliberately narrow: every
    # send inserts into it at random places, and a wide index multiplies the
    # pages each commit writes; a send reads the ledger by id instead.
    "CREATE INDEX touches_customer ON touches (customer)",
    """CREATE TRIGGER touches_append_only_update BEFORE UPDATE ON touches BEGIN
        SELECT RAISE(ABORT, 'touches are append-only');
    END""",
    """CREATE TRIGGER touches_append_only_delete BEFORE DELETE ON touches BEGIN
        SELECT RAISE(ABORT, 'touches are append-only');
    END""",
    """CREATE TABLE outbox (
        id INTEGER PRIMARY KEY,
        touch INTEGER NOT NULL UNIQUE REFERENCES touches (id),
        campaign INTEGER NOT NULL REFERENCES campaigns (id),
        channel TEXT NOT NULL,
        adapter TEXT NOT NULL CHECK (adapter IN ('file', 'webhook')),
        -- One per (campaign, customer, channel), so unique because touches are;
        -- not indexed: nothing looks a delivery up by it, and sends insert in bulk.
        idempotency_key TEXT NOT NULL,
        payload TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        delivered_at INTEGER
    )""",
    "CREATE INDEX outbox_campaign_status ON outbox (campaign, status)",
]


def _statements(statements: list[str]) -> Callable[["Database"], None]:
    def apply(db: "Database") -> None:
        for statement in statements:
            db.execute(statement)

    return apply


# The audit log refuses edits and deletions like the touch ledger (verify still catches
# someone who drops these triggers first).
_V3 = [
    """CREATE TRIGGER audit_append_only_update BEFORE UPDATE ON audit BEGIN
        SELECT RAISE(ABORT, 'the audit log is append-only');
    END""",
    """CREATE TRIGGER audit_append_only_delete BEFORE DELETE ON audit BEGIN
        SELECT RAISE(ABORT, 'the audit log is append-only');
    END""",
]

# Contact indexes without the customers who have no such contact: an orders
# file creates customers with an id alone, and each NULL entry cost three
# b-tree inserts per customer for nothing (every lookup compares the column,
# which tells SQLite the partial index holds every row it can match).
_V4 = [
    "DROP INDEX customers_email",
    "CREATE INDEX customers_email ON customers (email) WHERE email IS NOT NULL",
    "DROP INDEX customers_phone",
    "CREATE INDEX customers_phone ON customers (phone) WHERE phone IS NOT NULL",
    "DROP INDEX customers_name",
    "CREATE INDEX customers_name ON customers (name COLLATE NOCASE) WHERE name IS NOT NULL",
]

# Append only: a migration that has shipped is never edited.
MIGRATIONS: list[tuple[str, Callable[["Database"], None]]] = [
    ("m001_initial", _statements(_V1)),
    ("m002_campaigns", _statements(_V2)),
    ("m003_audit_append_only", _statements(_V3)),
    ("m004_partial_contact_indexes", _statements(_V4)),
]
SCHEMA_VERSION = len(MIGRATIONS)


def migrate(db: "Database") -> int:
    """Apply pending migrations; return the schema version now in force."""
    from sqlite_utils import Migrations

    migrations = Migrations("tierdesk")
    for name, apply in MIGRATIONS:
        migrations(name=name)(apply)
    migrations.apply(db)
    version = len(migrations.applied(db))
    db.execute(f"PRAGMA user_version = {version}")
    return version
