"""Who may use the settings pages: users with argon2id passwords, their memberships of
companies with a role, and the throttle on failed sign-ins. Plain functions over a
SQLAlchemy connection, no web framework: the CLI (`hub user`) and the web app
(hub/web/pages.py) share them."""
