"""Sign-ins live on the server: a saved session cookie opens nothing once its sign-in has ended."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import select

from assistant.app import create_app
from assistant.auth import reset_token
from assistant.care.signins import change_role, deactivate
from assistant.clock import FixedClock
from assistant.db.models import AuditLog, SignIn, User
from assistant.db.units import transaction
from assistant.runtime import Runtime

from .conftest import World, csrf, sign_in

END_FORM = re.compile(r'action="/sessions/(\d+)/end"')


def cookie(client: FlaskClient) -> str:
    found = client.get_cookie("session")
    assert found is not None
    return found.value


def replay(app: Flask, value: str, path: str, user_agent: str | None = None) -> Any:
    """The saved cookie sent from a fresh client, as someone who copied it would."""
    other = app.test_client()
    other.set_cookie("session", value)
    return other.get(path, headers={"User-Agent": user_agent} if user_agent else {})


def refused(response: Any) -> bool:
    return response.status_code == 302 and "/login" in response.headers["Location"]


def record(world: World) -> str:
    return f"/participants/{world.ids['P001']}"


def user(world: World, email: str) -> User:
    with transaction(world.rt.engine) as db:
        return db.exec(select(User).where(User.email == email)).one()


def test_a_saved_cookie_works_while_signed_in_and_not_after_logout(app: Flask, as_user: Any, world: World) -> None:
    client = as_user("sam@example.org")
    saved = cookie(client)
    assert replay(app, saved, record(world)).status_code == 200  # the replay itself works while signed in
    assert client.post("/logout", data={"csrf_token": csrf(client, "/")}).status_code == 302
    assert refused(replay(app, saved, record(world)))
    with transaction(world.rt.engine) as db:
        ended = db.exec(select(SignIn)).one()
    assert ended.end_reason == "logout" and ended.ended_at is not None


def test_the_cookie_holds_a_token_not_the_user_id(as_user: Any, world: World) -> None:
    client = as_user("sam@example.org")
    with client.session_transaction() as sess:
        token = sess["_user_id"]
    assert token != str(user(world, "sam@example.org").id) and len(token) >= 40
    with transaction(world.rt.engine) as db:
        row = db.exec(select(SignIn)).one()
    assert token not in row.token_hash  # stored hashed
    assert row.remote_addr == "127.0.0.1" and row.user_agent.startswith("Werkzeug")


def test_a_saved_cookie_is_refused_after_a_password_reset(app: Flask, as_user: Any, world: World) -> None:
    client = as_user("sam@example.org")
    saved = cookie(client)
    link = "/reset/" + reset_token(world.rt.settings.secret_key, user(world, "sam@example.org"))
    elsewhere = app.test_client()
    new = "a brand new password 77"
    answer = elsewhere.post(link, data={"password": new, "confirm": new, "csrf_token": csrf(elsewhere, link)})
    assert answer.status_code == 302
    assert refused(replay(app, saved, record(world)))
    assert refused(client.get(record(world)))
    with transaction(world.rt.engine) as db:
        assert {r.end_reason for r in db.exec(select(SignIn)).all()} == {"password_reset"}


def test_a_saved_cookie_is_refused_after_a_role_change(app: Flask, as_user: Any, world: World) -> None:
    client = as_user("lead@example.org")
    saved = cookie(client)
    assert client.get("/team").status_code == 200
    with transaction(world.rt.engine) as db:
        change_role(
            db, db.exec(select(User).where(User.email == "lead@example.org")).one(), "specialist", world.rt.clock.now()
        )
    assert refused(replay(app, saved, "/"))
    assert refused(client.get("/team"))


def test_a_role_changed_in_the_database_alone_still_ends_the_session(app: Flask, as_user: Any, world: World) -> None:
    client = as_user("lead@example.org")
    with transaction(world.rt.engine) as db:
        lead = db.exec(select(User).where(User.email == "lead@example.org")).one()
        lead.role = "service_admin"
        db.add(lead)
    assert refused(client.get("/"))


def test_a_saved_cookie_is_refused_after_deactivation(app: Flask, as_user: Any, world: World) -> None:
    client = as_user("sam@example.org")
    saved = cookie(client)
    with transaction(world.rt.engine) as db:
        deactivate(db, db.exec(select(User).where(User.email == "sam@example.org")).one(), world.rt.clock.now())
    assert refused(replay(app, saved, record(world)))


def test_sessions_end_8_hours_after_sign_in_however_busy(
    app: Flask, as_user: Any, world: World, clock: FixedClock
) -> None:
    client = as_user("sam@example.org")
    saved = cookie(client)
    signed_in = clock.now()
    for _ in range(23):  # a request every 20 minutes, up to 7 hours 40 minutes after sign-in
        clock.set(clock.now() + timedelta(minutes=20))
        assert client.get(record(world)).status_code == 200, clock.now() - signed_in
    clock.set(signed_in + timedelta(hours=8))
    assert refused(replay(app, saved, record(world)))
    assert refused(client.get(record(world)))
    with transaction(world.rt.engine) as db:
        assert db.exec(select(SignIn)).one().end_reason == "expired"


def test_sessions_end_after_the_idle_limit(app: Flask, as_user: Any, world: World, clock: FixedClock) -> None:
    client = as_user("sam@example.org")
    saved = cookie(client)
    clock.set(clock.now() + timedelta(minutes=29))
    assert client.get(record(world)).status_code == 200
    clock.set(clock.now() + timedelta(minutes=29))  # 58 minutes after sign-in, 29 after the last request
    assert client.get(record(world)).status_code == 200
    clock.set(clock.now() + timedelta(minutes=30))
    assert refused(replay(app, saved, record(world)))
    with transaction(world.rt.engine) as db:
        assert db.exec(select(SignIn)).one().end_reason == "idle"


def test_the_idle_limit_is_a_setting(rt: Runtime, world: World, clock: FixedClock) -> None:
    app = create_app(runtime=replace(rt, settings=replace(rt.settings, session_idle_minutes=5)))
    client = app.test_client()
    assert sign_in(client, "sam@example.org").status_code == 302
    clock.set(clock.now() + timedelta(minutes=4))
    assert client.get("/").status_code == 200
    clock.set(clock.now() + timedelta(minutes=5))
    assert refused(client.get("/"))


def test_a_cookie_from_another_browser_is_dropped(app: Flask, as_user: Any, world: World) -> None:
    saved = cookie(as_user("sam@example.org"))
    assert refused(replay(app, saved, record(world), user_agent="Mozilla/5.0 (elsewhere)"))


def test_ending_another_session_from_the_sessions_page(app: Flask, as_user: Any, world: World) -> None:
    here, there = as_user("sam@example.org"), as_user("sam@example.org")
    page = here.get("/sessions").get_data(as_text=True)
    assert "This browser" in page
    (other_id,) = END_FORM.findall(page)
    answer = here.post(f"/sessions/{other_id}/end", data={"csrf_token": csrf(here, "/sessions")})
    assert answer.status_code == 302
    assert refused(there.get(record(world)))
    assert here.get(record(world)).status_code == 200
    with transaction(world.rt.engine) as db:
        entries = [(a.user_email, a.action, a.detail) for a in db.exec(select(AuditLog)).all()]
    assert ("sam@example.org", "session_end", {"account": "sam@example.org", "session": int(other_id)}) in entries


def test_ending_all_other_sessions_keeps_this_one(as_user: Any, world: World) -> None:
    here, there, third = as_user("sam@example.org"), as_user("sam@example.org"), as_user("sam@example.org")
    here.post("/sessions/end-others", data={"csrf_token": csrf(here, "/sessions")})
    assert refused(there.get("/")) and refused(third.get("/"))
    assert here.get("/").status_code == 200


def sign_in_id(world: World, email: str) -> int:
    with transaction(world.rt.engine) as db:
        found = db.exec(
            select(SignIn).join(User, User.id == SignIn.user_id).where(User.email == email)  # type: ignore[arg-type]
        ).all()
    assert len(found) == 1 and found[0].id is not None
    return found[0].id


def test_an_admin_ends_sessions_in_their_own_service_only(as_user: Any, world: World) -> None:
    sam, kim, admin = as_user("sam@example.org"), as_user("kim@example.org"), as_user("admin@example.org")
    page = admin.get("/sessions").get_data(as_text=True)
    assert "sam@example.org" in page and "kim@example.org" not in page
    token = csrf(admin, "/sessions")
    assert (
        admin.post(f"/sessions/{sign_in_id(world, 'kim@example.org')}/end", data={"csrf_token": token}).status_code
        == 404
    )
    assert kim.get("/").status_code == 200
    assert (
        admin.post(f"/sessions/{sign_in_id(world, 'sam@example.org')}/end", data={"csrf_token": token}).status_code
        == 302
    )
    assert refused(sam.get("/"))
    with transaction(world.rt.engine) as db:
        actions = [(a.user_email, a.action, a.detail.get("account")) for a in db.exec(select(AuditLog)).all()]
    assert ("admin@example.org", "session_end", "sam@example.org") in actions
    assert not any(who == "kim@example.org" for _, action, who in actions if action == "session_end")


@pytest.mark.parametrize("email", ["chris@example.org", "lead@example.org", "kim@example.org"])
def test_nobody_else_ends_a_specialists_session(as_user: Any, world: World, email: str) -> None:
    sam = as_user("sam@example.org")
    other = as_user(email)
    target = sign_in_id(world, "sam@example.org")
    assert other.post(f"/sessions/{target}/end", data={"csrf_token": csrf(other, "/sessions")}).status_code == 404
    assert "sam@example.org" not in other.get("/sessions").get_data(as_text=True)
    assert sam.get("/").status_code == 200


def test_the_nightly_job_forgets_sign_ins_after_90_days(as_user: Any, world: World, clock: FixedClock) -> None:
    from assistant.jobs.tick import tick

    as_user("sam@example.org")
    night = clock.now().replace(hour=3, minute=0)
    tick(world.rt, night + timedelta(days=89))
    with transaction(world.rt.engine) as db:
        assert len(db.exec(select(SignIn)).all()) == 1
    tick(world.rt, night + timedelta(days=91))
    with transaction(world.rt.engine) as db:
        assert db.exec(select(SignIn)).all() == []


def test_the_role_and_deactivation_commands_end_sessions(app: Flask, as_user: Any, world: World) -> None:
    from click.testing import CliRunner

    from assistant.cli.commands import main

    env = {"ASSISTANT_DATABASE_URL": world.rt.settings.database_url}
    sam, chris = as_user("sam@example.org"), as_user("chris@example.org")
    saved_sam, saved_chris = cookie(sam), cookie(chris)
    changed = CliRunner().invoke(main, ["set-role", "sam@example.org", "team_lead", "--team", "blue"], env=env)
    assert changed.exit_code == 0, changed.output
    assert refused(replay(app, saved_sam, record(world)))
    assert chris.get("/").status_code == 200
    stopped = CliRunner().invoke(main, ["deactivate-user", "chris@example.org"], env=env)
    assert stopped.exit_code == 0, stopped.output
    assert "1 participant(s) are still on their caseload" in stopped.output  # Priya: someone must move her
    assert refused(replay(app, saved_chris, "/"))
    with transaction(world.rt.engine) as db:
        reasons = {r.user_id: r.end_reason for r in db.exec(select(SignIn)).all()}
        actions = {a.action for a in db.exec(select(AuditLog)).all()}
    assert set(reasons.values()) == {"role_change", "deactivated"}
    assert {"role_change", "deactivate"} <= actions
    # Sam signs in again with the new role and sees the team page.
    assert as_user("sam@example.org").get("/team").status_code == 200
