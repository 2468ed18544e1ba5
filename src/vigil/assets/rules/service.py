"""Rule rules: CRUD of alert rules scoped to an existing site or asset (or global), params checked.

Every function takes the request's session and keyword-only arguments, flushes (never commits) and
raises domain errors; the router turns them into responses. Applying the rules is `rules.checks`.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from vigil.assets.assets.service import require_asset
from vigil.assets.rules.checks import validate_params
from vigil.assets.rules.models import Rule
from vigil.assets.rules.schemas import RuleCreate, RuleUpdate
from vigil.assets.sites.service import require_site
from vigil.core.crud import apply_patch, get_or_404, patch_changes
from vigil.core.db import utcnow
from vigil.core.errors import NotFound, ValidationFailed
from vigil.core.pagination import PageParams, paginate


class RuleNotFound(NotFound):
    title = "Rule not found"


def _params(kind: str, params: dict[str, float]) -> dict[str, float]:
    full, problems = validate_params(kind, params)
    if problems:
        raise ValidationFailed("; ".join(problems), errors=[
            {"loc": ["body", "params"], "msg": p, "type": "invalid_param"} for p in problems])
    return full


async def create_rule(session: AsyncSession, *, rule_in: RuleCreate) -> Rule:
    """Create an alert rule, scoped to an existing site or asset (or global)."""
    await require_site(session, rule_in.site_id)
    await require_asset(session, rule_in.asset_id)
    rule = Rule(**rule_in.model_dump(exclude={"params"}), params=_params(rule_in.kind, rule_in.params))
    session.add(rule)
    await session.flush()
    return rule


async def get_rule(session: AsyncSession, *, rule_id: uuid.UUID) -> Rule:
    """One rule by id, or 404."""
    return await get_or_404(session, Rule, rule_id, error=RuleNotFound)


async def list_rules(session: AsyncSession, *, page: PageParams, kind: str | None = None,
                     site_id: uuid.UUID | None = None, asset_id: uuid.UUID | None = None) -> dict:
    """One page of rules, filtered by kind, site and asset."""
    stmt = select(Rule).order_by(Rule.kind, Rule.created_at, Rule.id)
    for column, value in ((Rule.kind, kind), (Rule.site_id, site_id), (Rule.asset_id, asset_id)):
        if value is not None:
            stmt = stmt.where(column == value)
    return await paginate(session, stmt, page)


async def update_rule(session: AsyncSession, *, rule_id: uuid.UUID, rule_in: RuleUpdate) -> Rule:
    """PATCH a rule; it takes effect at the next check (raising or resolving then, as the new settings say)."""
    rule = await get_rule(session, rule_id=rule_id)
    changes = patch_changes(rule_in)
    if "params" in changes:
        changes["params"] = _params(rule.kind, {**rule.params, **changes["params"]})
    apply_patch(rule, changes)
    rule.updated_at = utcnow()
    await session.flush()
    return rule


async def delete_rule(session: AsyncSession, *, rule_id: uuid.UUID) -> None:
    """Delete a rule; its active alerts are resolved at the next check."""
    await session.delete(await get_rule(session, rule_id=rule_id))
    await session.flush()
