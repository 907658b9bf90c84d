"""What the hub's capabilities call on a provider client, as `typing.Protocol` types.

The capability code (accounting sync and export, the order job, notifications, Procore
projects) is written against these instead of a concrete client, so it says what it needs
from a provider and nothing else. The members are the ones the callers actually call; each
docstring says what the call means for every provider that implements it.

Where the providers of one capability genuinely differ, the protocol stays narrow and a
provider-specific adapter takes the concrete client instead: QuickBooks pages with CDC and
SQL-like queries and writes under a SyncToken, Xero pages with If-Modified-Since and writes
batches (each one's streams.py and export.py in hub/providers/<name>/); a Slack
post, a SendGrid template mail and a Twilio SMS take different arguments (the per-kind
jobs of hub/notify/sender.py, the checks of hub/notify/readiness.py).

tests/test_client_protocols.py checks that each concrete client conforms (members and
parameter names), so a renamed parameter or a missing method fails there, not in a run.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Iterator, Mapping, Protocol, runtime_checkable

from hub.providers.transport import Transport

Pages = Iterator[list[dict[str, Any]]]


@runtime_checkable
class ProviderClient(Protocol):
    """What every provider client has: its transport, which the callers reach for the API
    statistics of a run (`transport.stats()`), the retry count (`transport.retries`), the
    rate budget and timeouts, and to close the HTTP connections (`transport.close()`) of a
    client they opened; and a connection check."""

    transport: Transport

    def check(self) -> dict[str, Any]:
        """A live, read-only call proving the credentials and the configured account work;
        returns a few facts about the account to show (company, store, sender...). Raises
        the provider's error when they do not."""
        ...


@runtime_checkable
class AccountingClient(ProviderClient, Protocol):
    """QuickBooks Online, Xero. The accounting sync, export and reconciliation open the
    client, pass it to the provider's own adapter (hub/sync/adapters.py for reads,
    hub/sync/export.py's sides for writes: these take the concrete client, because CDC vs
    If-Modified-Since paging and SyncToken vs read-before-write updates have no common
    form), and read its transport's statistics and close it."""


@runtime_checkable
class ProjectClient(ProviderClient, Protocol):
    """Procore. What the project link, the RFI/submittal/daily-log pull and the document
    share call. Lists come as pages (one list of records per API page), from `start_page`
    on, so an interrupted read resumes where it stopped."""

    company_id: str  # the company whose projects the client reads (a project of another one is not ours)

    def projects(self) -> Pages:
        """Pages of the company's projects."""
        ...

    def project(self, project_id: int | str) -> dict[str, Any]:
        """One project of the company; RecordNotFound when the id is not one."""
        ...

    def rfis(self, project_id: int, updated_since: datetime | None = None, until: datetime | None = None,
             *, recycled: bool = False, per_page: int = ..., start_page: int = 1) -> Pages:
        """A project's RFIs updated in [updated_since, until] (all without `updated_since`),
        in id order; with `recycled` the soft-deleted ones instead."""
        ...

    def submittals(self, project_id: int, updated_since: datetime | None = None, until: datetime | None = None,
                   *, recycled: bool = False, per_page: int = ..., start_page: int = 1) -> Pages:
        """A project's submittals, read like `rfis`."""
        ...

    def daily_logs(self, project_id: int, log_type: str, start: date, end: date, per_page: int = ...,
                   start_page: int = 1) -> Pages:
        """One type of a project's daily logs (`manpower_logs`, `notes_logs`, ...) dated start..end."""
        ...

    def files(self, project_id: int | str) -> Pages:
        """Pages of a project's files (to find an upload whose outcome was unknown)."""
        ...

    def upload_file(self, project_id: int | str, name: str, content: bytes, content_type: str | None) -> dict[str, Any]:
        """Create a file in the project, sent once (a lost answer is looked up with `files`,
        never resent blindly); returns the created file."""
        ...


@runtime_checkable
class DeliveryClient(ProviderClient, Protocol):
    """DoorDash, Uber Eats: what the order job (hub/orders/processing.py) calls, in one
    vocabulary. `order_id` is the marketplace's id of the order; `order_number` the hub's
    POS order number (`PosDraft.order_number`), which the marketplace keeps as the merchant's
    reference; statuses are the hub's (hub/orders/state_machine.py), never the provider's.
    Calls the provider refuses because it is too late (already answered, cancelled,
    expired) raise RecordProblem."""

    # Whether `order_state` can read back how an order stands at the marketplace. When it
    # cannot (DoorDash), the job records each answer in the ledger before sending it, so an
    # answer whose reply was lost is recognised when the marketplace says "already processed".
    order_state_readable: bool

    def order_details(self, order_id: str, webhook: Mapping[str, Any]) -> dict[str, Any]:
        """The whole order, in the provider's own shape (its spec's `delivery.to_pos_draft` maps it).
        `webhook` is the payload that announced it: DoorDash's carries the order, Uber Eats'
        only notifies, so its order is read from the API by id."""
        ...

    def accept(self, order_id: str, order_number: str) -> None:
        """Tell the marketplace the restaurant takes the order (DoorDash: confirm, Uber
        Eats: accept_pos_order), with the POS order number as the merchant's reference."""
        ...

    def deny(self, order_id: str, order_number: str, code: str, explanation: str, items: list[str] | None = None) -> None:
        """Tell the marketplace the restaurant refuses the order. `code` is the provider's
        reason code (its spec's `delivery.refusal_codes`), `explanation` the words for
        a person, `items` the merchant SKUs at fault when there are some."""
        ...

    def order_state(self, order_id: str) -> str | None:
        """The hub's status of the order as the marketplace has it now (accepted, rejected,
        cancelled, delivered), or None when it cannot be read or says nothing the hub
        knows. Asked after a refused answer, to learn whether an earlier one went through."""
        ...

    def push_status(self, order_id: str, status: str, order_number: str, reason: str, details: str = "") -> None:
        """Tell the marketplace what the kitchen did: `status` is one the provider is told
        about (its spec's `delivery.pushed`): `ready` (ready for pickup) or `cancelled`,
        the latter with the provider's cancel `reason` code and `details` for a person.
        A status the provider has no call for raises ValueError."""
        ...


@runtime_checkable
class StoreClient(ProviderClient, Protocol):
    """DoorDash, Uber Eats: a marketplace store that can be opened and closed to orders (the
    settings page's store tab). Apart from DeliveryClient, which the order job needs, so a
    marketplace without a store-status API can still take orders."""

    def store_status(self) -> dict[str, Any]:
        """Whether the store takes orders at the marketplace now: `{"open": bool, "detail":
        why not, for a person, or None}`."""
        ...

    def set_store_open(self, is_open: bool, reason: str) -> None:
        """Open the store to orders again, or close it (pause) with `reason` for a person."""
        ...


@runtime_checkable
class MessagingClient(ProviderClient, Protocol):
    """Slack, SendGrid, Twilio. The notification sender caches, paces (it gives each client
    a rate budget of its own), times out and closes clients through their transport; the
    send itself and the set-up checks are per kind (a Slack post to a channel, a SendGrid
    template mail, a Twilio SMS) and take the concrete client: hub/notify/sender.py,
    hub/notify/readiness.py, hub/providers/<name>/setup.py."""
