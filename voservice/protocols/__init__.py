"""The protocols: one module (and Flask blueprint) per service the clients call.

``scs``, ``ssa``, ``sia``, ``tap`` (with ``uws``, its job protocol),
``datalink``, ``lightcurve``, ``resolve``, ``analysis`` and ``registry`` parse a request's
parameters, ask the archive (:mod:`voservice.archive`, :mod:`voservice.catalog`,
:mod:`voservice.resolver`, :mod:`voservice.query`) on behalf of the
request's principal (:mod:`voservice.context`), and stream the answer.  They
share only the DALI rules (:mod:`.dali`: parameters, MAXREC, formats, errors)
and the VOSI documents (:mod:`.vosi`); no protocol module imports another.  The
portal's pages live in :mod:`voservice.portal` and follow the same rule.
"""
