"""Who may see which participant. Everything on the dashboard goes through here."""

from __future__ import annotations

from typing import Any

from sqlalchemy import false, or_
from sqlmodel import Session, col, select

from assistant.db.models import Participant, Specialist, User

ROLES = ("specialist", "team_lead", "service_admin")


def scoped(query: Any, user: User) -> Any:
    """Limit a query over Participant to those this user may see."""
    if user.role == "service_admin":
        return query.where(Participant.service_id == user.service_id)
    if user.role == "team_lead":
        reach: list[Any] = []
        if user.specialist_id is not None:
            reach.append(Participant.specialist_id == user.specialist_id)
        if user.team:
            team = select(Specialist.id).where(Specialist.service_id == user.service_id, Specialist.team == user.team)
            reach.append(col(Participant.specialist_id).in_(team))
        if not reach:
            return query.where(false())
        return query.where(Participant.service_id == user.service_id, or_(*reach))
    if user.role == "specialist" and user.specialist_id is not None:
        return query.where(Participant.service_id == user.service_id, Participant.specialist_id == user.specialist_id)
    return query.where(false())  # a role with no caseload sees nobody


def visible_participant(db: Session, user: User, participant_id: int) -> Participant | None:
    """The participant if this user may see them; None (a 404) otherwise, whether or not they exist."""
    found: Participant | None = db.exec(
        scoped(select(Participant).where(Participant.id == participant_id), user)
    ).first()
    return found


def specialists_in_reach(db: Session, user: User) -> list[Specialist]:
    query = select(Specialist).where(Specialist.service_id == user.service_id)
    if user.role == "team_lead":
        # The same reach as `scoped`: their team (if they have one) and their own caseload.
        if user.team:
            query = query.where((Specialist.team == user.team) | (Specialist.id == user.specialist_id))
        else:
            query = query.where(Specialist.id == user.specialist_id)
    elif user.role == "specialist":
        query = query.where(Specialist.id == user.specialist_id)
    return list(db.exec(query.order_by(col(Specialist.name))).all())


def transfer_targets(db: Session, user: User, person: Participant) -> list[Specialist]:
    """Who this user may hand a participant they can see to: the transfer form lists exactly these,
    and the transfer refuses anyone else. An admin: any specialist of the service. A team lead: their
    team (and their own caseload), the reach they see. A specialist: any colleague in the service, as
    a specialist hands over their own participant to whoever takes them on."""
    if user.role == "specialist":
        query = select(Specialist).where(Specialist.service_id == person.service_id).order_by(col(Specialist.name))
        candidates = list(db.exec(query).all())
    else:
        candidates = specialists_in_reach(db, user)
    return [s for s in candidates if s.id != person.specialist_id and s.service_id == person.service_id]
