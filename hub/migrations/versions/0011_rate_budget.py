"""One rate budget per provider account, shared by every process: `rate_budget` and the
function `rate_budget_take` that spends from it (hub/providers/shared_budget.py).

Why: a provider's published limit (QuickBooks 500 requests/minute per realm, Xero 60/minute
and 5,000/day per tenant, Procore 3,600/hour per company) belongs to the provider account,
not to a process. Counted per process, four runs on one realm could each spend the realm's
500 and meet a storm of 429s. Every hub process already shares this database, so the count
lives here.

One row per (provider, account, window): the window's limit (`calls` per `per_seconds`),
61 counters (`slots`) of the window cut into 60 slots plus the current one, the index of the
newest slot (`head`, epoch seconds over the slot length, so every process and host counts
on the database's clock), and `blocked_until`, set when the provider itself said stop (a
429's Retry-After, a reported remaining of 0).

The table is UNLOGGED: a count is worth nothing after a minute, so it is not worth a WAL
write and an fsync per provider call (that flush was most of an acquire's cost,
bench/rate_budget.py). After a crash PostgreSQL empties it, and on a failover the standby has
it empty; the processes then register their rows again and the count starts afresh, as
the provider's own window soon does.

`rate_budget_take(provider, account)` is one round trip: it locks the account's rows, slides
their counters to now, and either counts one call in every window (wait 0) or counts
nothing and says how long until the fullest window frees a call. NULL when the account has
no rows (the caller registers them, then asks again).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 20:40:00.000000
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

SLIDE = """
CREATE FUNCTION rate_budget_slide(slots integer[], head bigint, cur bigint) RETURNS integer[]
LANGUAGE sql IMMUTABLE AS $$
    -- the counters moved on to slot `cur`: the oldest fall off, new empty ones come in
    SELECT CASE
        WHEN cur <= head THEN slots
        WHEN cur - head >= cardinality(slots) THEN array_fill(0, ARRAY[cardinality(slots)])
        ELSE slots[(cur - head + 1)::int:cardinality(slots)] || array_fill(0, ARRAY[(cur - head)::int])
    END
$$
"""

TAKE = """
CREATE FUNCTION rate_budget_take(p_provider text, p_account text, OUT wait_s double precision, OUT reason text)
LANGUAGE plpgsql AS $$
DECLARE
    n constant integer := 60;  -- slots per window; the counters hold n + 1 (the current one too)
    now_s constant double precision := extract(epoch FROM clock_timestamp());
    r record;
    counts integer[];
    cur bigint;
    total integer;
    k integer;
    need double precision;
    found_rows boolean := false;
BEGIN
    wait_s := 0;
    reason := '';
    FOR r IN SELECT window_name, calls, per_seconds, slots, head, blocked_until FROM rate_budget
             WHERE provider = p_provider AND account = p_account ORDER BY window_name FOR UPDATE LOOP
        found_rows := true;
        cur := floor(now_s / (r.per_seconds / n))::bigint;
        counts := rate_budget_slide(r.slots, r.head, cur);
        SELECT coalesce(sum(c), 0) INTO total FROM unnest(counts) AS c;
        IF total >= r.calls THEN
            -- the n + 1 slots cover more than the window, so the count never falls short of the
            -- provider's; a call is free once enough of the oldest slots have left
            k := 0;
            WHILE total >= r.calls LOOP
                k := k + 1;
                total := total - counts[k];
            END LOOP;
            need := (cur + k) * (r.per_seconds / n) - now_s;
            IF need > wait_s THEN
                wait_s := need;
                reason := r.window_name;
            END IF;
        END IF;
        IF r.blocked_until IS NOT NULL AND extract(epoch FROM r.blocked_until) - now_s > wait_s THEN
            wait_s := extract(epoch FROM r.blocked_until) - now_s;
            reason := 'rate';
        END IF;
    END LOOP;
    IF NOT found_rows THEN
        wait_s := NULL;
        RETURN;
    END IF;
    IF wait_s <= 0 THEN
        UPDATE rate_budget b
           SET slots = s.v[1:n] || (s.v[n + 1] + 1), head = greatest(s.head, s.cur), updated_at = clock_timestamp()
          FROM (SELECT q.window_name, q.head, c.cur, rate_budget_slide(q.slots, q.head, c.cur) AS v
                  FROM rate_budget q, LATERAL (SELECT floor(now_s / (q.per_seconds / n))::bigint AS cur) c
                 WHERE q.provider = p_provider AND q.account = p_account) s
         WHERE b.provider = p_provider AND b.account = p_account AND b.window_name = s.window_name;
        wait_s := 0;
    END IF;
END
$$
"""


def upgrade() -> None:
    op.create_table('rate_budget',
    sa.Column('provider', sa.Text(), nullable=False),
    sa.Column('account', sa.Text(), nullable=False),
    sa.Column('window_name', sa.Text(), nullable=False),
    sa.Column('calls', sa.Integer(), nullable=False),
    sa.Column('per_seconds', sa.Double(), nullable=False),
    sa.Column('slots', postgresql.ARRAY(sa.Integer()), nullable=False),
    sa.Column('head', sa.BigInteger(), nullable=False),
    sa.Column('blocked_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint('calls > 0 AND per_seconds > 0', name=op.f('ck_rate_budget_positive')),
    sa.PrimaryKeyConstraint('provider', 'account', 'window_name', name=op.f('pk_rate_budget')),
    prefixes=['UNLOGGED'],
    )
    op.execute(SLIDE)
    op.execute(TAKE)


def downgrade() -> None:
    op.execute('DROP FUNCTION rate_budget_take(text, text)')
    op.execute('DROP FUNCTION rate_budget_slide(integer[], bigint, bigint)')
    op.drop_table('rate_budget')
