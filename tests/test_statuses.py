"""Every status the code writes or looks for is a member of its column's enum, so the strings
stored and the enums cannot drift apart."""

from __future__ import annotations

import ast
from enum import StrEnum
from pathlib import Path

from sqlmodel import SQLModel

from assistant.db import models
from assistant.db.models import (
    Campaign,
    CampaignRecipient,
    CampaignStatus,
    ContactRequest,
    DueTask,
    Flag,
    FlagStatus,
    FlowSession,
    Measure,
    MeasureStatus,
    Message,
    MessageStatus,
    Notification,
    NotificationStatus,
    RecipientStatus,
    RequestStatus,
    SessionStatus,
    StaffTask,
    StaffTaskStatus,
    TaskStatus,
)

PACKAGE = Path(__file__).resolve().parent.parent / "assistant"

ENUM_OF: dict[type[SQLModel], type[StrEnum]] = {
    Campaign: CampaignStatus,
    CampaignRecipient: RecipientStatus,
    ContactRequest: RequestStatus,
    DueTask: TaskStatus,
    Flag: FlagStatus,
    FlowSession: SessionStatus,
    Measure: MeasureStatus,
    Message: MessageStatus,
    Notification: NotificationStatus,
    StaffTask: StaffTaskStatus,
}
# Delivery callbacks are kept as the provider sent them, whatever it sends.
RAW = {"statusevent"}
BY_NAME = {model.__name__: enum for model, enum in ENUM_OF.items()}
ANY_STATUS = {member.value for enum in ENUM_OF.values() for member in enum}


def test_every_status_column_has_an_enum() -> None:
    with_status = {name for name, t in SQLModel.metadata.tables.items() if "status" in t.c}
    assert with_status - RAW == {str(model.__tablename__) for model in ENUM_OF}


def test_defaults_are_members() -> None:
    for model, enum in ENUM_OF.items():
        default = model.model_fields["status"].default
        assert default is None or type(default) is enum or str(default) == "PydanticUndefined", model


def test_enums_are_exported_and_compare_equal_to_their_strings() -> None:
    for enum in ENUM_OF.values():
        assert getattr(models, enum.__name__) is enum
        for member in enum:
            assert member == member.value and f"{member}" == member.value


def _constants(tree: ast.Module) -> dict[str, ast.expr]:
    """Module-level names bound to a literal (or a tuple of them), to follow `x.status == WAITING`."""
    found: dict[str, ast.expr] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            found[node.targets[0].id] = node.value
    return found


def _strings(node: ast.expr, constants: dict[str, ast.expr], depth: int = 0) -> list[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return [s for item in node.elts for s in _strings(item, constants, depth)]
    if isinstance(node, ast.Starred):
        return _strings(node.value, constants, depth)
    if isinstance(node, ast.IfExp):
        return _strings(node.body, constants, depth) + _strings(node.orelse, constants, depth)
    if isinstance(node, ast.Name) and node.id in constants and depth < 3:
        return _strings(constants[node.id], constants, depth + 1)
    return []


def _status_column(node: ast.expr) -> tuple[bool, str | None]:
    """Whether `node` is a status column or attribute (`x.status`, `Model.status`, `t.c.status`,
    `col(Model.status)`, `unindexed(Model.status)`), and the model's name when it says."""
    if isinstance(node, ast.Call) and len(node.args) == 1 and isinstance(node.func, ast.Name):
        return _status_column(node.args[0])
    if isinstance(node, ast.Attribute) and node.attr == "status":
        owner = node.value
        return True, owner.id if isinstance(owner, ast.Name) and owner.id in BY_NAME else None
    return False, None


def status_strings(source: str) -> list[tuple[int, str | None, str]]:
    """Every string `source` writes to or compares with a status: (line, model or None, value)."""
    tree = ast.parse(source)
    constants = _constants(tree)
    found: list[tuple[int, str | None, str]] = []

    def add(line: int, model: str | None, value: ast.expr) -> None:
        found.extend((line, model, s) for s in _strings(value, constants))

    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                pairs = (
                    list(zip(target.elts, node.value.elts, strict=False))
                    if isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple)
                    else [(target, node.value)]
                )
                for left, right in pairs:
                    if _status_column(left)[0]:
                        add(node.lineno, _status_column(left)[1], right)
        elif isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            for side in sides:
                is_status, model = _status_column(side)
                if is_status:
                    for other in sides:
                        if other is not side:
                            add(node.lineno, model, other)
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr == "in_" and node.args:
                is_status, model = _status_column(func.value)
                if is_status:
                    add(node.lineno, model, node.args[0])
            called = func.id if isinstance(func, ast.Name) else None
            for keyword in node.keywords:
                if keyword.arg == "status":
                    add(node.lineno, called if called in BY_NAME else None, keyword.value)
    return found


def test_every_status_string_in_the_code_is_a_member_of_its_enum() -> None:
    strays = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        for line, model, value in status_strings(path.read_text(encoding="utf-8")):
            allowed = {m.value for m in BY_NAME[model]} if model else ANY_STATUS
            if value not in allowed:
                strays.append(f"{path.relative_to(PACKAGE.parent)}:{line} {model or 'status'} {value!r}")
    assert strays == [], "statuses missing from their enum:\n" + "\n".join(strays)


def test_a_status_missing_from_its_enum_is_caught() -> None:
    source = """
WAITING = ("waiting", "snoozing")
row.status, row.ended_at = "parked", now
select(Flag).where(Flag.status == "closed", col(Message.status).in_(("queued", "lost")))
if session.status in WAITING:
    pass
DueTask(status="later")
"""
    found = {(model, value) for _, model, value in status_strings(source)}
    assert {
        (None, "parked"),
        ("Flag", "closed"),
        ("Message", "lost"),
        (None, "snoozing"),
        ("DueTask", "later"),
    } <= found
    assert all(
        value not in ({m.value for m in BY_NAME[model]} if model else ANY_STATUS)
        for model, value in found
        if value in {"parked", "closed", "lost", "snoozing", "later"}
    )
