"""The journey page's forms through the app: referral details, job start, exit; scoped and audited."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlmodel import select

from assistant.db.models import AuditLog, DueTask, JobStart
from assistant.db.units import transaction

from .conftest import World, csrf


def _post(client: Any, world: World, path: str, data: dict[str, str]) -> Any:
    pid = world.ids["P001"]
    token = csrf(client, f"/participants/{pid}/journey")
    return client.post(f"/participants/{pid}/{path}", data=data | {"csrf_token": token}, follow_redirects=True)


def test_referral_details_saved_and_checked(as_user: Any, world: World) -> None:
    sam = as_user("sam@example.org")
    page = _post(sam, world, "referral", {"referral_date": "2026-11-02", "referral_source": "gp", "support_start": ""})
    assert "Referral details saved." in page.get_data(as_text=True)
    alex = world.participant("P001")
    assert (alex.referral_date, alex.referral_source) == (date(2026, 11, 2), "gp")
    refused = _post(sam, world, "referral", {"referral_date": "2026-11-02", "referral_source": "friend"})
    assert "referral source: must be one of" in refused.get_data(as_text=True)
    future = _post(sam, world, "referral", {"referral_date": "2027-01-02", "referral_source": "other"})
    assert "cannot be in the future" in future.get_data(as_text=True)
    assert world.participant("P001").referral_source == "gp"
    with transaction(world.rt.engine) as db:
        assert len(db.exec(select(AuditLog).where(AuditLog.action == "referral")).all()) == 1


def test_job_start_refuses_bad_hours_and_counts_seven_hours(as_user: Any, world: World) -> None:
    sam = as_user("sam@example.org")
    bad = _post(sam, world, "job-start", {"started_on": "2026-11-30", "hours_per_week": "0", "sector": "retail"})
    assert "Job start not saved: hours a week" in bad.get_data(as_text=True)
    ok = _post(sam, world, "job-start", {"started_on": "2026-11-30", "hours_per_week": "7", "sector": "care"})
    text = ok.get_data(as_text=True)
    assert "Job start recorded." in text and "Health and social care" in text
    with transaction(world.rt.engine) as db:
        assert [j.hours_per_week for j in db.exec(select(JobStart)).all()] == [7.0]
    assert world.participant("P001").cohort == "in_work"


def test_a_job_start_twice_or_from_long_ago_is_refused(as_user: Any, world: World) -> None:
    sam = as_user("sam@example.org")
    job = {"started_on": "2026-11-30", "hours_per_week": "16", "employer": "Tesco", "sector": "retail"}
    assert "Job start recorded." in _post(sam, world, "job-start", job).get_data(as_text=True)
    again = _post(sam, world, "job-start", job | {"employer": "tesco "})  # a double submit
    assert "recorded already" in again.get_data(as_text=True)
    ancient = _post(sam, world, "job-start", job | {"started_on": "0001-01-01"})
    assert "at most two years ago" in ancient.get_data(as_text=True)
    with transaction(world.rt.engine) as db:
        assert len(db.exec(select(JobStart)).all()) == 1


def test_a_job_recorded_after_support_ended_plans_no_texts(as_user: Any, world: World) -> None:
    """The goodbye has gone: the job counts in the reports, and nobody is texted about it."""
    sam = as_user("sam@example.org")
    pid = world.ids["P001"]
    assert "Support ended." in _post(sam, world, "exit", {"reason": "moved", "ends_on": "2026-11-22"}).get_data(
        as_text=True
    )
    job = {"started_on": "2026-11-30", "hours_per_week": "16", "employer": "Tesco", "sector": "retail"}
    page = _post(sam, world, "job-start", job).get_data(as_text=True)
    assert "Support has ended, so no texts are planned about it." in page
    _post(
        sam, world, "referral", {"referral_date": "2026-11-02", "referral_source": "gp", "support_start": "2026-11-03"}
    )
    with transaction(world.rt.engine) as db:
        assert len(db.exec(select(JobStart)).all()) == 1
        pending = db.exec(select(DueTask).where(DueTask.participant_id == pid, DueTask.status == "pending")).all()
    assert pending == []
    # The record says so: not "Active" with contact coming.
    record = sam.get(f"/participants/{pid}").get_data(as_text=True)
    assert "Support ended. In work." in record and "None while support ended" in record
    assert "Alex" in sam.get("/?show=support+ended").get_data(as_text=True)
    assert "Alex" not in sam.get("/?show=active").get_data(as_text=True)


def test_exit_needs_a_listed_reason_and_is_not_for_another_team(as_user: Any, world: World) -> None:
    sam = as_user("sam@example.org")
    refused = _post(sam, world, "exit", {"reason": "bored", "ends_on": "2026-11-22"})
    assert "Exit not recorded: exit reason must be one of" in refused.get_data(as_text=True)
    assert world.participant("P001").exit_reason is None
    kim = as_user("kim@example.org")  # another service: the record is not there for them
    pid = world.ids["P001"]
    assert kim.get(f"/participants/{pid}/journey").status_code == 404
    done = _post(sam, world, "exit", {"reason": "moved", "ends_on": "2026-11-22"})
    assert "Support ended. Automated texts have stopped." in done.get_data(as_text=True)
    with transaction(world.rt.engine) as db:
        pending = db.exec(select(DueTask).where(DueTask.participant_id == pid, DueTask.status == "pending")).all()
    assert pending == []
    again = _post(sam, world, "exit", {"reason": "job", "ends_on": "2026-11-22"})
    assert "an exit is already recorded" in again.get_data(as_text=True)
    assert world.participant("P001").exit_reason == "moved"


def test_support_cannot_start_before_the_referral(as_user: Any, world: World) -> None:
    sam = as_user("sam@example.org")
    refused = _post(
        sam, world, "referral", {"referral_date": "2026-11-01", "referral_source": "gp", "support_start": "2026-10-01"}
    )
    assert "Support start: cannot be before the referral date." in refused.get_data(as_text=True)
    alex = world.participant("P001")
    assert (alex.referral_date, alex.support_started_on) == (None, None)
    far = _post(sam, world, "referral", {"referral_date": "2026-11-01", "support_start": "2099-01-01"})
    assert "Support start: cannot be more than 60 days ahead." in far.get_data(as_text=True)
    assert world.participant("P001").support_started_on is None


def _set(world: World, **values: Any) -> None:
    from assistant.db.models import Participant

    with transaction(world.rt.engine) as db:
        person = db.get(Participant, world.ids["P001"])
        assert person is not None
        for key, value in values.items():
            setattr(person, key, value)
        db.add(person)


def test_the_goodbye_goes_to_a_paused_person_and_the_page_says_when_none_can(as_user: Any, world: World) -> None:
    from assistant.db.models import Message

    sam = as_user("sam@example.org")
    _set(world, paused=True)  # a pause holds automated texts, not the specialist's own goodbye
    done = _post(sam, world, "exit", {"reason": "job", "ends_on": "2026-11-22", "goodbye": "yes"})
    assert "The goodbye text is on its way." in done.get_data(as_text=True)
    with transaction(world.rt.engine) as db:
        keys = [m.message_key for m in db.exec(select(Message).where(Message.participant_id == world.ids["P001"]))]
    assert keys == ["journey/goodbye"]


def test_no_goodbye_to_someone_without_consent_and_the_page_says_so(as_user: Any, world: World) -> None:
    from assistant.db.models import Message

    sam = as_user("sam@example.org")
    _set(world, sms_consent=False)
    done = _post(sam, world, "exit", {"reason": "job", "ends_on": "2026-11-22", "goodbye": "yes"})
    assert "No goodbye text was sent: they cannot be texted" in done.get_data(as_text=True)
    with transaction(world.rt.engine) as db:
        assert db.exec(select(Message)).all() == []
