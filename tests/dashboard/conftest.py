"""Dashboard fixtures: a service with two teams, users of every role, and a signed-in client helper."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import select

from assistant.auth import hash_password
from assistant.db.models import Participant, Service, Specialist, User
from assistant.db.units import transaction
from assistant.imports.caseload import import_caseload
from assistant.runtime import Runtime

PASSWORD = "correct horse battery 42"
CASELOAD = (
    "participant_id,first_name,phone,specialist_email,specialist_name,service,team,cohort,checkin_day,checkin_time\n"
    "P001,Alex,07700900101,sam@example.org,Sam Jones,north,blue,out_of_work,Tue,10:30\n"
    "P002,Jordan,07700900102,sam@example.org,Sam Jones,north,blue,in_work,Wed,12:30\n"
    "P003,Priya,07700900103,chris@example.org,Chris Lee,north,blue,out_of_work,Thu,11:00\n"
    "P004,Morgan,07700900104,robin@example.org,Robin Shah,north,green,out_of_work,Mon,10:00\n"
    "P005,Casey,07700900105,kim@example.org,Kim Wu,south,red,out_of_work,Mon,10:00\n"
)
NORTH_DUTY = "duty@north.example.org"
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class World:
    rt: Runtime
    ids: dict[str, int]  # participant external id -> internal id

    def participant(self, external_id: str) -> Participant:
        with transaction(self.rt.engine) as db:
            return db.exec(select(Participant).where(Participant.external_id == external_id)).one()


@pytest.fixture
def world(rt: Runtime, tmp_path: Path) -> World:
    path = tmp_path / "caseload.csv"
    path.write_text(CASELOAD)
    import_caseload(rt, path, rt.clock.now())
    with transaction(rt.engine) as db:
        north = db.exec(select(Service).where(Service.slug == "north")).one()
        north.settings = {"duty_contact_email": NORTH_DUTY}  # crisis handling needs one before any change
        db.add(north)
        services = {s.slug: s.id for s in db.exec(select(Service)).all()}
        specialists = {s.email: s.id for s in db.exec(select(Specialist)).all()}
        hashed = hash_password(PASSWORD)
        for email, role, service, specialist, team in [
            ("sam@example.org", "specialist", "north", "sam@example.org", None),
            ("chris@example.org", "specialist", "north", "chris@example.org", None),
            ("lead@example.org", "team_lead", "north", None, "blue"),
            ("admin@example.org", "service_admin", "north", None, None),
            ("kim@example.org", "specialist", "south", "kim@example.org", None),
        ]:
            db.add(
                User(
                    email=email,
                    password_hash=hashed,
                    role=role,
                    service_id=services[service],
                    specialist_id=specialists.get(specialist or ""),
                    team=team,
                )
            )
        ids = {p.external_id: p.id for p in db.exec(select(Participant)).all()}
    return World(rt=rt, ids=ids)  # type: ignore[arg-type]


def csrf(client: FlaskClient, path: str = "/login") -> str:
    page = client.get(path)
    match = TOKEN.search(page.get_data(as_text=True))
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def sign_in(client: FlaskClient, email: str, password: str = PASSWORD) -> Any:
    return client.post("/login", data={"email": email, "password": password, "csrf_token": csrf(client)})


@pytest.fixture
def as_user(app: Flask, world: World) -> Any:
    def make(email: str) -> FlaskClient:
        client = app.test_client()
        response = sign_in(client, email)
        assert response.status_code == 302, response.get_data(as_text=True)
        return client

    return make
