"""Who is at the keyboard, and what their role lets them do.

The identity is the OS login (from the password database, not from
``$USER``, which anyone can set). ``TIERDESK_USER`` overrides it only in a
store whose config sets ``trust_env_user = true`` (scripts and tests).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.errors import InputError, NotFound, PermissionDenied

if TYPE_CHECKING:
    from core.store import Store

ROLES = ("owner", "operator", "support", "viewer")

# What each role may do. Reading tiers and customers is open to every role;
# support sees contact details masked unless it reveals them (audited).
PERMISSIONS: dict[str, frozenset[str]] = {
    "owner": frozenset({
        "import", "refresh", "export", "tag", "consent", "reveal", "users",
        "campaign.edit", "campaign.approve", "campaign.send", "config",
    }),
    "operator": frozenset({
        "import", "refresh", "export", "tag", "consent", "reveal",
        "campaign.edit", "campaign.approve", "campaign.send",
    }),
    "support": frozenset({"tag", "consent", "reveal"}),
    "viewer": frozenset(),
}

ACTION_NAMES = {
    "import": "import data",
    "refresh": "refresh the reading",
    "export": "export customer data",
    "tag": "tag customers",
    "consent": "record consent changes",
    "reveal": "reveal contact details",
    "users": "manage users",
    "campaign.edit": "create or edit campaigns",
    "campaign.approve": "approve campaigns",
    "campaign.send": "send campaigns",
    "config": "change the config",
}


def os_login() -> str:
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError):
        import getpass

        return getpass.getuser()


@dataclass(frozen=True)
class User:
    login: str
    role: str
    known: bool
    warning: str | None = None

    def can(self, action: str) -> bool:
        return action in PERMISSIONS[self.role]

    @property
    def masks_contacts(self) -> bool:
        """Support and viewers see email and phone masked unless revealed."""
        return self.role in ("support", "viewer")

    def require(self, action: str) -> None:
        if not self.can(action):
            allowed = [role for role in ROLES if action in PERMISSIONS[role]]
            raise PermissionDenied(
                f"{self.login} ({self.role}) may not {ACTION_NAMES.get(action, action)}",
                hint=f"Allowed roles: {', '.join(allowed)}. An owner can change roles with "
                "`tierdesk users add LOGIN --role ROLE`.",
            )


def current_user(store: "Store", login: str | None = None) -> User:
    """Resolve the user at the keyboard against the store's users table."""
    warning = None
    if login is None:
        login = os_login()
        env_user = os.environ.get("TIERDESK_USER")
        if env_user:
            if not _usable_login(env_user):
                raise InputError(f"TIERDESK_USER={env_user!r} is not a login name (no spaces or control characters)")
            if store.config.trust_env_user:
                login = env_user
            else:
                warning = (
                    f"TIERDESK_USER={env_user} ignored: this store's config does not set "
                    "trust_env_user = true"
                )
    row = store.conn.execute("SELECT role FROM users WHERE login = ?", (login,)).fetchone()
    if row is None:
        # Someone the owner has not added yet can look, not touch.
        return User(login=login, role="viewer", known=False, warning=warning)
    return User(login=login, role=row[0], known=True, warning=warning)


def _usable_login(login: str) -> bool:
    return bool(login) and len(login) <= 64 and all(ch.isprintable() and not ch.isspace() for ch in login)


def add_user(store: "Store", actor: User, login: str, role: str, now: int) -> None:
    from core.audit import record

    actor.require("users")
    login = login.strip()
    if not _usable_login(login):
        raise InputError(f"not a login name: {login!r}")
    if role not in ROLES:
        raise InputError(f"unknown role {role!r} (expected one of {', '.join(ROLES)})")
    with store.transaction():
        previous = store.scalar("SELECT role FROM users WHERE login = ?", (login,))
        if previous == "owner" and role != "owner":
            owners = store.scalar("SELECT count(*) FROM users WHERE role = 'owner'")
            if owners <= 1:
                raise InputError(f"{login} is the last owner; add another owner first")
        store.conn.execute(
            "INSERT INTO users (login, role, added_by, added_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (login) DO UPDATE SET role = excluded.role",
            (login, role, actor.login, now),
        )
        record(store, actor=actor.login, action="users.add", target=login, now=now,
               details={"role": role, "previous_role": previous})


def list_users(store: "Store") -> list[dict]:
    return store.rows("SELECT login, role, added_by, added_at FROM users ORDER BY login")


def remove_user(store: "Store", actor: User, login: str, now: int) -> None:
    from core.audit import record

    actor.require("users")
    with store.transaction():
        role = store.scalar("SELECT role FROM users WHERE login = ?", (login,))
        if role is None:
            raise NotFound(f"no user {login!r}")
        if role == "owner" and store.scalar("SELECT count(*) FROM users WHERE role = 'owner'") <= 1:
            raise InputError(f"{login} is the last owner and cannot be removed")
        store.conn.execute("DELETE FROM users WHERE login = ?", (login,))
        record(store, actor=actor.login, action="users.remove", target=login, now=now, details={"role": role})
