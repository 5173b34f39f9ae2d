"""The governance room's declaration (read by the hubs through ``opsloop.rooms``)."""

from opsloop.core import ClientProperty, Nav, Room, UiRoute

ROOM = Room(
    name="governance",
    doc="API tokens and roles, the permission rule of every route, the hash-chained audit trail, "
    "approvals for protected aliases, retention.",
    tables=("opsloop.governance._tables",),
    routers=("opsloop.governance.api:router",),
    # The UI's sign-in: the login page, sessions, sign-out, OpenID Connect (/auth/...).
    root_routers=("opsloop.governance._signin:router",),
    cli_groups=(
        ("tokens", "opsloop.governance.cli:tokens_app"),
        ("audit", "opsloop.governance.cli:audit_app"),
        ("approvals", "opsloop.governance._approvals_cli:approvals_app"),
        ("retention", "opsloop.governance.cli:retention_app"),
    ),
    # A protected alias moves only with an approval, and is not deleted.
    hooks=(
        ("registry.alias_move", "opsloop.governance._approvals:check_move"),
        ("registry.alias_delete", "opsloop.governance._approvals:check_delete"),
    ),
    client=ClientProperty("governance", "opsloop.governance:Governance"),
    nav=(Nav("approvals", "Approvals", order=94), Nav("audit", "Audit", order=95)),
    ui_routes=(
        UiRoute("approvals", "pages/approvals.js", "renderApprovals"),
        UiRoute("audit", "pages/audit.js", "renderAudit"),
    ),
    # Authentication, permission rules and the audit trail, around every route of the server.
    middleware=("opsloop.governance._guard:install",),
    # Retention: old traces, prediction log rows and request bodies, on a schedule.
    background=("opsloop.governance._retention:start_retention",),
)
