"""The web portal: pages for people, beside the VO endpoints for programs.

Three blueprints, each in its own module:

- :mod:`voservice.portal.pages` (``portal``): home and search, results, star pages,
  frame galleries, and the compact JSON the page scripts plot;
- :mod:`voservice.portal.service_pages` (``service_pages``): the browser views of the
  VO endpoints (info pages, VOSI through an XSL stylesheet, the ADQL form);
- :mod:`voservice.portal.login` (``login``): browser sessions (log in, log out, CSRF).

The portal calls the same archive layer (:mod:`voservice.archive`, the resolver, the
access rules) as the protocols; it never implements a second search or curve assembly.
"""

from __future__ import annotations

from flask import Flask


def register(app: Flask) -> None:
    """Add the portal's blueprints to the application."""
    from voservice.portal import login, pages, service_pages

    for module in (pages, service_pages, login):
        module.register(app)
