"""The archive: what SKVO holds, asked for on behalf of a principal.

The layer below the protocols.  SCS, SSA, SIA, DataLink, TAP's ObsCore, the
light-curve routes and the portal all call it, and it knows nothing of Flask
requests: callers pass the engine, the stores and the principal.

- :mod:`.describe`: response columns of the services (``resources/services``).
- :mod:`.rows`: SELECTs streamed as MAXREC-limited chunks.
- :mod:`.targets`: targets in a cone, with their visible aggregates.
- :mod:`.lightcurves`: series of a night and their points as light curves.
- :mod:`.stars`: a star's light curve per band over all its visible nights.
- :mod:`voservice.catalog`, :mod:`voservice.resolver`: what a principal may
  see (TAP tables, ObsCore rows) and which target a name means.
"""
