"""Background entry points: burning expired bonuses and re-caching balances a date has changed."""

from lavka.core.jobs import periodic
from lavka.loyalty import actions


@periodic(3600)
def refresh_balances() -> int:
    """Hourly: accounts whose bonuses became spendable or expired since their balance was cached."""
    return actions.refresh_stale_accounts()
