"""Provider emulators: one ASGI app per provider, speaking its real wire protocol.

Empty until the emulators-and-clients issue lands (see the tracker); the package exists so
the layout of DESIGN section 5 is in place.
"""
