"""Provider clients: one module per provider over one shared transport (transport.py).

The transport owns what every provider needs the same way: OAuth 2.0 refresh (before
expiry and on 401) with the rotated refresh token persisted under a row lock, retries
with backoff and jitter that honour Retry-After, a client-side rate budget, and the error
taxonomy (errors.py). A provider module adds only its own wire details: paths, headers,
pagination and how its error bodies read.
"""
