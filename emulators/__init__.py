"""Provider emulators: one ASGI app per provider, speaking its real wire protocol, plus a
customer's webhook sink; the demo and the tests run them on loopback ports.

They stand in for the providers, so they are written from the providers' documentation and
share no code with the hub (`hub` never imports them, and they import nothing of `hub`: the
import-linter contracts in pyproject.toml). Run them with `python -m emulators run`.
"""
