"""Connecting integrations from the settings pages: the OAuth authorization-code flow
(oauth_flow.py) and its state store (oauth_state.py)."""
