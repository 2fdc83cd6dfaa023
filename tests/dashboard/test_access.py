"""Nobody sees a participant who is not theirs to see: lists, pages, exports, guessed ids; CSRF on every form."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlmodel import select

from assistant.db.models import AuditLog, Participant, Specialist
from assistant.db.units import transaction

from .conftest import World, csrf, sign_in

REACH = {
    "sam@example.org": {"P001", "P002"},
    "chris@example.org": {"P003"},
    "lead@example.org": {"P001", "P002", "P003"},
    "admin@example.org": {"P001", "P002", "P003", "P004"},
    "kim@example.org": {"P005"},
}
NAMES = {"P001": "Alex", "P002": "Jordan", "P003": "Priya", "P004": "Morgan", "P005": "Casey"}


@pytest.mark.parametrize("email", sorted(REACH))
def test_each_role_sees_exactly_its_reach(as_user: Any, world: World, email: str) -> None:
    client = as_user(email)
    listing = client.get("/").get_data(as_text=True)
    for pid, name in NAMES.items():
        visible = pid in REACH[email]
        assert (f">{name}</a>" in listing) is visible, (email, pid)
        for path in (f"/participants/{world.ids[pid]}", f"/participants/{world.ids[pid]}/export.json"):
            assert client.get(path).status_code == (200 if visible else 404), (email, path)


def test_guessed_and_missing_ids_are_404(as_user: Any, world: World) -> None:
    client = as_user("sam@example.org")
    for path in ("/participants/999999", f"/participants/{world.ids['P005']}", "/participants/abc"):
        assert client.get(path).status_code == 404
    # Changes to someone else's participant are refused the same way, and change nothing.
    other = world.ids["P003"]
    token = csrf(client, "/")
    assert client.post(f"/participants/{other}/pause", data={"csrf_token": token}).status_code == 404
    assert world.participant("P003").paused is False


@pytest.mark.parametrize(
    "email,allowed", [("sam@example.org", False), ("lead@example.org", True), ("admin@example.org", True)]
)
def test_team_page_is_for_leads_and_admins(as_user: Any, email: str, allowed: bool) -> None:
    assert as_user(email).get("/team").status_code == (200 if allowed else 404)


@pytest.mark.parametrize(
    "email,allowed", [("sam@example.org", False), ("lead@example.org", False), ("admin@example.org", True)]
)
def test_audit_log_is_for_service_admins(as_user: Any, email: str, allowed: bool) -> None:
    assert as_user(email).get("/audit").status_code == (200 if allowed else 404)


ROUTES = [
    ("GET", "/"),
    ("GET", "/flags"),
    ("GET", "/team"),
    ("GET", "/audit"),
    ("GET", "/participants/{id}"),
    ("GET", "/participants/{id}/export.json"),
    ("POST", "/participants/{id}/pause"),
    ("POST", "/participants/{id}/resume"),
    ("POST", "/participants/{id}/preferences"),
    ("POST", "/participants/{id}/message"),
    ("POST", "/participants/{id}/transfer"),
    ("POST", "/participants/{id}/appointments"),
    ("POST", "/flags/1/acknowledge"),
    ("POST", "/flags/1/resolve"),
    ("GET", "/settings"),
    ("POST", "/settings"),
    ("GET", "/imports"),
    ("POST", "/imports"),
    ("GET", "/imports/1"),
    ("GET", "/imports/1/errors.csv"),
    ("GET", "/unknown-numbers"),
    ("POST", "/unknown-numbers/1/link"),
    ("POST", "/unknown-numbers/1/review"),
    ("GET", "/sessions"),
    ("POST", "/sessions/1/end"),
    ("POST", "/sessions/end-others"),
]


@pytest.mark.parametrize("method,path", ROUTES)
def test_signed_out_requests_go_to_sign_in(app: Flask, world: World, method: str, path: str) -> None:
    client = app.test_client()
    url = path.format(id=world.ids["P001"])
    response = client.post(url, data={"csrf_token": csrf(client)}) if method == "POST" else client.get(url)
    assert response.status_code == 302 and "/login" in response.headers["Location"]


@pytest.mark.parametrize("method,path", [r for r in ROUTES if r[0] == "POST"] + [("POST", "/logout")])
def test_posts_without_or_with_a_wrong_csrf_token_are_refused(
    as_user: Any, world: World, method: str, path: str
) -> None:
    client = as_user("sam@example.org")
    url = path.format(id=world.ids["P001"])
    assert client.post(url, data={}).status_code == 400
    assert client.post(url, data={"csrf_token": "forged"}).status_code == 400
    assert world.participant("P001").paused is False


def test_views_are_audited(as_user: Any, world: World) -> None:
    client = as_user("sam@example.org")
    client.get(f"/participants/{world.ids['P001']}")
    client.get(f"/participants/{world.ids['P001']}/export.json")
    with transaction(world.rt.engine) as db:
        actions = [(a.user_email, a.action, a.participant_id) for a in db.exec(select(AuditLog)).all()]
    assert ("sam@example.org", "view_record", world.ids["P001"]) in actions
    assert ("sam@example.org", "export_record", world.ids["P001"]) in actions


def test_lockout_after_repeated_failures(app: Flask, world: World) -> None:
    client = app.test_client()
    for _ in range(5):
        assert sign_in(client, "sam@example.org", "wrong password 123").status_code == 401
    # Even the right password is refused while locked, with the same message.
    locked = sign_in(client, "sam@example.org")
    assert locked.status_code == 401
    assert "not right, or the account is locked" in locked.get_data(as_text=True)
    unknown = sign_in(client, "nobody@example.org")
    assert unknown.get_data(as_text=True).count("not right, or the account is locked") == 1


def test_security_headers(as_user: Any) -> None:
    response = as_user("sam@example.org").get("/")
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert "unsafe-inline" not in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Cache-Control"] == "no-store"


def test_open_redirect_after_sign_in_is_refused(app: Flask, world: World) -> None:
    client = app.test_client()
    token = csrf(client)
    response = client.post(
        "/login?next=//evil.example/x",
        data={"email": "sam@example.org", "password": "correct horse battery 42", "csrf_token": token},
    )
    assert response.headers["Location"] == "/"


def test_participant_count_matches_database(world: World) -> None:
    with transaction(world.rt.engine) as db:
        assert len(db.exec(select(Participant)).all()) == 5


def test_a_team_lead_without_a_team_sees_no_one_elses_caseload(as_user: Any, world: World) -> None:
    from assistant.auth import hash_password
    from assistant.db.models import User

    from .conftest import PASSWORD

    with transaction(world.rt.engine) as db:
        lead = db.exec(select(User).where(User.email == "lead@example.org")).one()
        for specialist in db.exec(select(Specialist)).all():
            specialist.team = None  # nobody's team is "no team"
            db.add(specialist)
        db.add(
            User(
                email="teamless@example.org",
                password_hash=hash_password(PASSWORD),
                role="team_lead",
                service_id=lead.service_id,
                team=None,
            )
        )
    client = as_user("teamless@example.org")
    page = client.get("/team").get_data(as_text=True)
    for name in ("Sam Jones", "Chris Lee", "Robin Shah"):
        assert name not in page


def _specialist_ids(world: World) -> dict[str, int]:
    with transaction(world.rt.engine) as db:
        return {s.email: s.id for s in db.exec(select(Specialist)).all() if s.id}


def _transfer(client: Any, world: World, external_id: str, specialist_id: int) -> None:
    pid = world.ids[external_id]
    client.post(
        f"/participants/{pid}/transfer",
        data={"csrf_token": csrf(client, f"/participants/{pid}"), "specialist_id": specialist_id},
    )


def test_a_team_lead_transfers_only_within_their_team(as_user: Any, world: World) -> None:
    ids = _specialist_ids(world)
    lead = as_user("lead@example.org")
    page = lead.get(f"/participants/{world.ids['P001']}").get_data(as_text=True)
    assert "Chris Lee" in page and "Robin Shah" not in page and "Kim Wu" not in page
    _transfer(lead, world, "P001", ids["robin@example.org"])  # the green team: edited into the form
    _transfer(lead, world, "P001", ids["kim@example.org"])  # another service
    assert world.participant("P001").specialist_id == ids["sam@example.org"]
    _transfer(lead, world, "P001", ids["chris@example.org"])
    assert world.participant("P001").specialist_id == ids["chris@example.org"]
    # An admin's reach is the whole service, and no further.
    admin = as_user("admin@example.org")
    _transfer(admin, world, "P001", ids["kim@example.org"])
    assert world.participant("P001").specialist_id == ids["chris@example.org"]
    _transfer(admin, world, "P001", ids["robin@example.org"])
    assert world.participant("P001").specialist_id == ids["robin@example.org"]


def test_a_specialist_hands_over_only_within_their_service(as_user: Any, world: World) -> None:
    ids = _specialist_ids(world)
    sam = as_user("sam@example.org")
    _transfer(sam, world, "P002", ids["kim@example.org"])
    assert world.participant("P002").specialist_id == ids["sam@example.org"]
    _transfer(sam, world, "P002", ids["robin@example.org"])
    assert world.participant("P002").specialist_id == ids["robin@example.org"]


@pytest.mark.parametrize("email", ["sam@example.org", "admin@example.org"])
def test_every_page_a_signed_in_user_gets_is_not_stored(app: Flask, as_user: Any, world: World, email: str) -> None:
    client = as_user(email)
    paths = sorted(
        {
            rule.rule
            for rule in app.url_map.iter_rules()
            if "GET" in (rule.methods or set()) and not rule.arguments and rule.endpoint != "static"
        }
    )
    paths += [f"/participants/{world.ids['P001']}", "/static/does-not-exist.css", "/no-such-page"]
    assert "/campaigns" in paths and "/imports" in paths
    for path in paths:
        response = client.get(path)
        assert response.headers.get("Cache-Control") == "no-store", (path, response.status_code)
    # Signed out, the sign-in page may be cached as before: the header follows the user, not the app.
    assert app.test_client().get("/login").headers.get("Cache-Control") != "no-store"
