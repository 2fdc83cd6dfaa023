"""Questionnaires on a private page: the link text, the page's answers through the same flow and
scoring, the safety pathway at item 9, and a link that shows nothing once used, expired or altered.

The same journeys run in Chromium in tests/browser/test_questionnaire_browser.py; these use
Flask's test client, so they also run on PostgreSQL.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlmodel import col, select

from assistant import engine
from assistant.care.flags import acknowledge
from assistant.clock import FixedClock
from assistant.contact.questionnaire_links import token_hash
from assistant.content.wording import lock_screen_words
from assistant.db.models import (
    Answer,
    DueTask,
    Flag,
    FlowSession,
    Measure,
    Message,
    Participant,
    QuestionnaireLink,
    Service,
)
from assistant.db.service_settings import ServiceSettings
from assistant.db.units import transaction
from assistant.imports.caseload import import_caseload
from assistant.jobs.tick import tick
from assistant.runtime import Runtime

from .conftest import PUBLIC_URL, Phone

ALEX = "+447700900101"
LINK = re.compile(re.escape(PUBLIC_URL) + r"(/q/[A-Za-z0-9_-]+) ")
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
QUESTION = re.compile(r'name="question" value="([^"]+)"')


def _setup(rt: Runtime, caseload_file: Path, clock: FixedClock, by: str = "link") -> int:
    import_caseload(rt, caseload_file, clock.now())
    with transaction(rt.engine) as db:
        alex = db.exec(select(Participant).where(Participant.external_id == "P001")).one()
        north = db.get(Service, alex.service_id)
        assert north is not None
        north.settings = ServiceSettings.from_json(
            {"questionnaire_by": by, "duty_contact_email": "duty@example.org"}
        ).to_json()
        db.add(north)
        assert alex.id is not None
        return alex.id


def _ask(rt: Runtime, clock: FixedClock, pid: int, instruments: list[str]) -> None:
    with transaction(rt.engine) as db:
        payload = {"instruments": instruments, "reason": "now"}
        db.add(DueTask(participant_id=pid, kind="questionnaire", due_at=clock.now(), payload=payload))
    tick(rt, clock.now())


def _texts(rt: Runtime, key: str) -> list[Message]:
    with transaction(rt.engine) as db:
        return list(db.exec(select(Message).where(Message.message_key == key).order_by(col(Message.id))).all())


def _path(rt: Runtime) -> str:
    (text,) = _texts(rt, "questionnaire/link")
    match = LINK.search(text.body)
    assert match, text.body
    return match.group(1)


def sent_link(rt: Runtime, caseload_file: Path, clock: FixedClock, instruments: list[str]) -> tuple[int, str]:
    """Alex's service asks by link and a sitting of `instruments` is due now: Alex's id, and the
    path in the text they were sent."""
    pid = _setup(rt, caseload_file, clock)
    _ask(rt, clock, pid, instruments)
    return pid, _path(rt)


def _answer(client: FlaskClient, path: str, value: str | None) -> tuple[int, str]:
    page = client.get(path).get_data(as_text=True)
    token, question = CSRF.search(page), QUESTION.search(page)
    assert token and question, page
    form = {"csrf_token": token.group(1), "question": question.group(1)}
    form |= {"skip": "1"} if value == "skip" else ({"answer": value} if value is not None else {})
    response = client.post(path, data=form)
    return response.status_code, response.get_data(as_text=True)


def answers(rt: Runtime) -> list[tuple[str, str]]:
    with transaction(rt.engine) as db:
        return [(a.question, a.value) for a in db.exec(select(Answer).order_by(col(Answer.id))).all()]


def measures(rt: Runtime) -> list[tuple[str, str, int | None]]:
    with transaction(rt.engine) as db:
        return [(m.instrument, m.status, m.total) for m in db.exec(select(Measure).order_by(col(Measure.id))).all()]


def test_the_text_is_discreet_and_the_link_holds_only_a_random_token(
    rt: Runtime, client: FlaskClient, clock: FixedClock, caseload_file: Path
) -> None:
    pid = _setup(rt, caseload_file, clock)
    _ask(rt, clock, pid, ["phq9", "gad7"])
    (text,) = _texts(rt, "questionnaire/link")
    assert text.status == "sent" and lock_screen_words(text.body) == []
    assert "A few questions are waiting for you" in text.body and "Alex" in text.body
    assert [m.message_key for m in _texts(rt, "questionnaire/item")] == []  # no item goes by text
    path = _path(rt)
    token = path.removeprefix("/q/")
    assert len(token) >= 43 and "P001" not in path and "Alex" not in path and str(pid) != token
    with transaction(rt.engine) as db:
        link = db.exec(select(QuestionnaireLink)).one()
        assert link.token_hash == token_hash(token) and token not in link.token_hash
        assert link.expires_at == clock.now() + timedelta(hours=72)
        row = db.get(FlowSession, link.session_id)
        assert row is not None and row.status == "on_page" and row.question == "phq9_1"
    page = client.get(path)
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    assert page.headers["Referrer-Policy"] == "same-origin" and page.headers["X-Robots-Tag"] == "noindex, nofollow"
    body = page.get_data(as_text=True)
    assert "Little interest or pleasure in doing things" in body and "Question 1 of 16" in body
    assert "Alex" not in body and "P001" not in body


def test_a_whole_sitting_on_the_page_is_scored_like_one_by_text(
    rt: Runtime, client: FlaskClient, clock: FixedClock, caseload_file: Path
) -> None:
    _pid, path = sent_link(rt, caseload_file, clock, ["phq9", "gad7"])
    phq = ["1", "2", "2", "3", "1", "2", "skip", "0", "0"]
    gad = ["2", "2", "1", "1", "0", "3", "2"]
    for value in phq + gad:
        clock.set(clock.now() + timedelta(minutes=1))
        status, body = _answer(client, path, value)
    assert status == 200 and "That's all the questions. Sam will look at your answers." in body
    assert answers(rt)[:2] == [("phq9_1", "1"), ("phq9_2", "2")] and ("phq9_7", "skipped") in answers(rt)
    assert measures(rt) == [("phq9", "partial", None), ("gad7", "complete", 11)]
    assert [m.message_key for m in _texts(rt, "questionnaire/thanks")] == []  # the page said it
    with transaction(rt.engine) as db:
        link = db.exec(select(QuestionnaireLink)).one()
        assert (link.end_reason, link.ended_at) == ("completed", clock.now())
    gone = client.get(path)
    assert gone.status_code == 404
    assert "Little interest" not in gone.get_data(as_text=True) and "Question" not in gone.get_data(as_text=True)


def test_item_9_on_the_page_signposts_on_the_page_and_by_text_and_raises_an_urgent_flag_at_once(
    rt: Runtime, client: FlaskClient, clock: FixedClock, caseload_file: Path
) -> None:
    pid, path = sent_link(rt, caseload_file, clock, ["phq9", "gad7"])
    for value in ["0"] * 8:
        _answer(client, path, value)
    assert _texts(rt, "common/crisis") == []
    status, body = _answer(client, path, "1")  # item 9: several days
    assert status == 200
    assert "<h1>If you need help now</h1>" in body and "Samaritans free on 116 123" in body and "NHS 111" in body
    assert "We'll leave the rest of the questions for now" in body
    (crisis,) = _texts(rt, "common/crisis")
    assert crisis.status == "sent" and crisis.phone == ALEX
    with transaction(rt.engine) as db:
        (flag,) = db.exec(select(Flag).where(Flag.kind == "crisis")).all()
        assert (flag.severity, flag.status, flag.participant_id) == ("urgent", "open", pid)
        assert flag.reason == engine.questionnaire.RISK_REASON
    # PHQ-9 ends with item 9, so it is complete; the GAD-7 waits for another time.
    assert measures(rt) == [("phq9", "complete", 1), ("gad7", "paused", None)]
    assert ("phq9_9", "1") in answers(rt)
    assert client.get(path).status_code == 404


def test_a_skipped_item_9_goes_on_and_asks_a_person_to_check(
    rt: Runtime, client: FlaskClient, clock: FixedClock, caseload_file: Path
) -> None:
    _pid, path = sent_link(rt, caseload_file, clock, ["phq9"])
    for value in ["0"] * 8 + ["skip"]:
        status, body = _answer(client, path, value)
    assert status == 200 and "<h1>Thank you</h1>" in body and "<h1>If you need help now</h1>" not in body
    with transaction(rt.engine) as db:
        assert [f.kind for f in db.exec(select(Flag)).all()] == ["risk_item_skipped"]


def test_an_answer_to_another_item_or_with_no_choice_is_not_saved(
    rt: Runtime, client: FlaskClient, clock: FixedClock, caseload_file: Path
) -> None:
    _pid, path = sent_link(rt, caseload_file, clock, ["phq9"])
    status, body = _answer(client, path, None)
    assert status == 400 and "Choose an answer, or skip this question" in body
    status, body = _answer(client, path, "7")  # no such answer on this scale
    assert status == 400 and answers(rt) == []
    page = client.get(path).get_data(as_text=True)
    token = CSRF.search(page)
    assert token
    stale = client.post(path, data={"csrf_token": token.group(1), "question": "phq9_4", "answer": "3"})
    assert stale.status_code == 303 and answers(rt) == []
    no_csrf = client.post(path, data={"question": "phq9_1", "answer": "3"})
    assert no_csrf.status_code == 400 and answers(rt) == []


def test_a_tampered_or_unknown_link_shows_nothing(
    rt: Runtime, client: FlaskClient, clock: FixedClock, caseload_file: Path
) -> None:
    _pid, path = sent_link(rt, caseload_file, clock, ["phq9"])
    altered = path[:-1] + ("A" if path[-1] != "A" else "B")
    for other in (altered, path + "x", "/q/" + "a" * 43, "/q/" + "a" * 500):
        response = client.get(other)
        assert response.status_code == 404, other
        assert "Little interest" not in response.get_data(as_text=True)
        assert client.post(other, data={"question": "phq9_1", "answer": "1"}).status_code in (400, 404)
    assert answers(rt) == []


def test_an_expired_link_shows_nothing_and_the_sitting_ends_as_expired(
    rt: Runtime, client: FlaskClient, clock: FixedClock, caseload_file: Path
) -> None:
    _pid, path = sent_link(rt, caseload_file, clock, ["phq9"])
    _answer(client, path, "2")
    clock.set(clock.now() + timedelta(hours=72))
    assert client.get(path).status_code == 404
    tick(rt, clock.now())
    assert measures(rt) == [("phq9", "expired", None)]
    with transaction(rt.engine) as db:
        link = db.exec(select(QuestionnaireLink)).one()
        assert link.end_reason == "expired"
    clock.set(clock.now() - timedelta(hours=1))  # even a clock set back cannot open it again
    assert client.get(path).status_code == 404


def test_a_text_while_the_page_is_open_is_not_an_answer(
    rt: Runtime, client: FlaskClient, phone: Phone, clock: FixedClock, caseload_file: Path
) -> None:
    pid = _setup(rt, caseload_file, clock)
    _ask(rt, clock, pid, ["phq9"])
    clock.set(clock.now() + timedelta(minutes=5))
    phone.text(ALEX, "2")
    assert answers(rt) == []
    with transaction(rt.engine) as db:
        assert [f.kind for f in db.exec(select(Flag)).all()] == ["message"]
    assert client.get(_path(rt)).status_code == 200


@pytest.mark.parametrize("reply", ["LINK", "link please"])
def test_link_in_reply_to_a_text_invitation_sends_the_page_instead(
    rt: Runtime, client: FlaskClient, phone: Phone, clock: FixedClock, caseload_file: Path, reply: str
) -> None:
    pid = _setup(rt, caseload_file, clock, by="text")
    _ask(rt, clock, pid, ["phq9"])
    (intro,) = _texts(rt, "questionnaire/intro")
    assert "Reply YES to answer by text, LINK to answer on a private web page" in intro.body
    clock.set(clock.now() + timedelta(minutes=1))
    phone.text(ALEX, reply)
    assert answers(rt) == [("start", "link")]  # their choice, recorded
    assert _texts(rt, "questionnaire/item") == [] and measures(rt) == []
    path = _path(rt)
    assert "Question 1 of 9" in client.get(path).get_data(as_text=True)
    for value in ["1"] * 8 + ["0"]:
        _answer(client, path, value)
    assert measures(rt) == [("phq9", "complete", 8)]


def test_a_sitting_paused_by_text_is_taken_up_on_the_page(
    rt: Runtime, client: FlaskClient, phone: Phone, clock: FixedClock, caseload_file: Path
) -> None:
    pid = _setup(rt, caseload_file, clock, by="text")
    _ask(rt, clock, pid, ["phq9", "gad7"])
    for text in ["yes"] + ["1"] * 8 + ["2"]:
        clock.set(clock.now() + timedelta(minutes=1))
        phone.text(ALEX, text)
    assert measures(rt) == [("phq9", "complete", 10), ("gad7", "paused", None)]
    with transaction(rt.engine) as db:
        north = db.get(Service, db.exec(select(Participant).where(Participant.id == pid)).one().service_id)
        assert north is not None
        north.settings = north.settings | {"questionnaire_by": "link"}
        db.add(north)
        # A person has spoken to them: routine contact, questionnaires included, may go again.
        acknowledge(db, db.exec(select(Flag)).one(), by="sam.jones@example.org", note=None, now=clock.now())
    clock.set(clock.now() + timedelta(days=1))  # Monday: before Tuesday's check-in
    _ask(rt, clock, pid, ["phq9", "gad7"])
    path = _path(rt)
    assert "Question 10 of 16" in client.get(path).get_data(as_text=True)
    for value in ["1"] * 7:
        _answer(client, path, value)
    assert measures(rt)[2:] == [("gad7", "complete", 7)]


def test_the_page_is_rate_limited_per_address_and_a_refusal_saves_nothing(
    rt: Runtime, client: FlaskClient, clock: FixedClock, caseload_file: Path
) -> None:
    from assistant.web.questionnaire import PAGE_LIMIT

    _pid, path = sent_link(rt, caseload_file, clock, ["phq9"])
    allowed = int(PAGE_LIMIT.split()[0])
    page = client.get(path).get_data(as_text=True)
    token = CSRF.search(page)
    assert token
    codes = [client.get("/q/" + "b" * 43).status_code for _ in range(allowed - 1)]
    assert set(codes) == {404}
    refused = client.post(path, data={"csrf_token": token.group(1), "question": "phq9_1", "answer": "2"})
    assert refused.status_code == 429 and answers(rt) == []
