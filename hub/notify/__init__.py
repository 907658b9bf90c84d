"""Notifications: a company's events routed to Slack channels, email (SendGrid) and SMS
(Twilio), delivered by the outbound webhook machinery, with delivery status coming back.

Modules, in the order a notification travels:

* `routes`: add / list / remove routes (a route is an outbound `webhook_endpoint` with a
  ``slack:``, ``sendgrid:`` or ``twilio:`` URL plus a `notification_route` row);
* `render`: the event as Block Kit, SendGrid dynamic template data, or SMS text;
* `sender`: the dispatcher's `Sender` for the three kinds (one provider attempt, no blind
  retries), with `pacing` (per-channel / per-account rate limits) and `ledger` (one
  `notification_message` row per recipient, written before the call);
* `callbacks`: where providers report delivery status (the integration's inbound endpoint);
* `status`: applies those reports (stored by the web app as `inbound_event`) to the messages;
* `worker`: the dispatcher with these senders plus the status tracker (``hub webhooks dispatch``, also ``hub notify dispatch``);
* `checks` (each provider's set-up checks, hub/providers/<name>/setup.py: the Slack channel,
  the SendGrid verified sender, the Twilio number, for an integration and its routes, `hub
  notify check`; the same questions guard adding a route) and `templates` (SendGrid
  template sync).
"""
