"""The STC-S region literal of ADQL's REGION() (TAP 1.0 section 6), parsed.

ADQL 2.1 (section 4.2.20) leaves the text of REGION('...') to the service and
encourages the STC-S subset of TAP 1.0: ``Position``, ``Circle``, ``Box``,
``Polygon`` and the compounds ``Union`` and ``Intersection`` (two or more
regions in parentheses) and ``Not`` (one region in parentheses)::

    Circle ICRS 10 20 0.5
    Polygon 10 20 11 20 11 21
    Box ICRS GEOCENTER 180 -30 2 1 unit deg
    Union ICRS ( Circle 10 20 1 Not ( Position 10.5 20.5 ) )

Words are case-insensitive.  After each shape word come, each optional and
in this order, the frame (ICRS; UNKNOWNFrame or none means the service's
ICRS, every other frame is refused: the service only has ICRS positions), a
reference position (BARYCENTER, GEOCENTER, TOPOCENTER, UNKNOWNRefPos ...:
ignored) and the flavor (SPHERICAL2 only).  A simple shape's numbers may be
followed by ``unit deg``; no other unit is taken (every number is in degrees).
Numbers have any SQL/Python float syntax (``10``, ``-1.5``, ``.5``,
``2E-3``).  Declinations lie in [-90, 90]; radii and Box sizes are not
negative; a Polygon has at least three vertices.

:func:`parse` returns a tree of :class:`Position`, :class:`Circle`,
:class:`Box`, :class:`Polygon`, :class:`Union`, :class:`Intersection` and
:class:`Not`, or raises :class:`adql.ADQLError` with a message that names the
problem and the place in the text (``REGION: expected a number after 'Circle
ICRS 10', found 'x'``).  The module is pure (no database); the translator
(:mod:`adql.translate`) reads a Box as ADQL's BOX (ADQL 2.1 section 4.2.9).
"""

from __future__ import annotations

import math
import re
from typing import NamedTuple

from .errors import ADQLError
from .shapes import Circle
from .shapes import Point as Position


class Box(NamedTuple):
    """Centre and full width and height, in degrees."""

    ra: float
    dec: float
    w: float
    h: float


class Polygon(NamedTuple):
    vertices: tuple[tuple[float, float], ...]


class Union(NamedTuple):
    regions: tuple


class Intersection(NamedTuple):
    regions: tuple


class Not(NamedTuple):
    region: object


Region = Position | Circle | Box | Polygon | Union | Intersection | Not

#: shape word -> how many numbers (Polygon: at least this many, in pairs)
SHAPES = {"POSITION": 2, "CIRCLE": 3, "BOX": 4, "POLYGON": 6}
COMPOUNDS = ("UNION", "INTERSECTION", "NOT")
#: STC-S shapes outside the TAP 1.0 subset
UNSUPPORTED_SHAPES = {"ELLIPSE": "Ellipse", "SECTOR": "Sector", "CONVEX": "Convex",
                      "DIFFERENCE": "Difference", "ALLSKY": "AllSky"}
NAMES = {"POSITION": "Position", "CIRCLE": "Circle", "BOX": "Box", "POLYGON": "Polygon",
         "UNION": "Union", "INTERSECTION": "Intersection", "NOT": "Not"}
ICRS_FRAMES = frozenset({"ICRS", "UNKNOWNFRAME"})
OTHER_FRAMES = frozenset({
    "FK4", "FK5", "J2000", "B1950", "ECLIPTIC", "GALACTIC", "GALACTIC_I", "GALACTIC_II",
    "SUPER_GALACTIC", "GEO_C", "GEO_D", "MAG", "GSE", "GSM", "SM", "HGC", "HGS", "HEEQ",
    "HRTN", "HPC", "HPR", "HCC", "HGI", "MERCURY_C", "VENUS_C", "LUNA_C", "MARS_C",
    "JUPITER_C_III", "SATURN_C_III", "URANUS_C_III", "NEPTUNE_C_III", "PLUTO_C",
    "MERCURY_G", "VENUS_G", "LUNA_G", "MARS_G", "JUPITER_G_III", "SATURN_G_III",
    "URANUS_G_III", "NEPTUNE_G_III", "PLUTO_G"})
REFPOS = frozenset({
    "BARYCENTER", "GEOCENTER", "HELIOCENTER", "TOPOCENTER", "LSR", "LSRK", "LSRD",
    "GALACTIC_CENTER", "LOCAL_GROUP_CENTER", "EMBARYCENTER", "MOON", "MERCURY", "VENUS",
    "MARS", "JUPITER", "SATURN", "URANUS", "NEPTUNE", "PLUTO", "RELOCATABLE",
    "UNKNOWNREFPOS"})
FLAVORS = frozenset({"SPHERICAL2", "SPHERICAL3", "CARTESIAN1", "CARTESIAN2", "CARTESIAN3",
                     "UNITSPHERE"})
MAX_DEPTH = 50

_TOKEN = re.compile(r"[()]|[^\s()]+")
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\Z")
_EXAMPLE = "'Circle ICRS 10 20 1'"


def parse(text: str) -> Region:
    """The region described by the STC-S ``text`` of REGION('...')."""
    return _Reader(text).top()


class _Reader:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = [(m.group(), m.start(), m.end()) for m in _TOKEN.finditer(text)]
        self.i = 0

    # -- tokens ------------------------------------------------------------------
    def peek(self) -> str | None:
        return self.toks[self.i][0] if self.i < len(self.toks) else None

    def take(self) -> str:
        tok = self.toks[self.i][0]
        self.i += 1
        return tok

    def before(self, start: int = 0) -> str:
        """The text read so far (from ``start``), for a message."""
        end = self.toks[self.i - 1][2] if self.i else 0
        s = " ".join(self.text[start:end].split())
        return s if len(s) <= 60 else "..." + s[-57:]

    def found(self) -> str:
        tok = self.peek()
        return "the end of the text" if tok is None else f"'{tok}'"

    def error(self, message: str) -> ADQLError:
        return ADQLError(f"REGION: {message}")

    def expected(self, what: str) -> ADQLError:
        if self.i == 0:
            return self.error(f"expected {what} at the start of the text, found {self.found()}")
        return self.error(f"expected {what} after '{self.before()}', found {self.found()}")

    # -- grammar -----------------------------------------------------------------
    def top(self) -> Region:
        if not self.toks:
            raise self.error(f"the text is empty; give a region such as {_EXAMPLE}")
        region = self.region(0)
        if self.peek() is not None:
            raise self.error(f"unexpected {self.found()} after '{self.before()}': the region "
                             "ends there")
        return region

    def region(self, depth: int) -> Region:
        if depth > MAX_DEPTH:
            raise self.error("the regions are nested too deeply")
        tok = self.peek()
        word = (tok or "").upper()
        if word in UNSUPPORTED_SHAPES:
            raise self.error(f"{UNSUPPORTED_SHAPES[word]} is not supported by this service "
                             "(only Position, Circle, Box, Polygon, Union, Intersection and "
                             "Not)")
        if word not in SHAPES and word not in COMPOUNDS:
            raise self.expected("a region (Position, Circle, Box, Polygon, Union, "
                                "Intersection or Not)")
        start = self.toks[self.i][1]
        self.take()
        self.frame()
        name = NAMES[word]
        if word in COMPOUNDS:
            return self.compound(word, name, start, depth)
        if word == "POLYGON":
            nums = self.numbers(start, name, 6, pairs=True)
            self.unit()
            return Polygon(tuple((nums[k], nums[k + 1]) for k in range(0, len(nums), 2)))
        nums = self.numbers(start, name, SHAPES[word])
        self.unit()
        return {"POSITION": Position, "CIRCLE": Circle, "BOX": Box}[word](*nums)

    def frame(self) -> None:
        """The optional frame, reference position and flavor, in that order."""
        word = (self.peek() or "").upper()
        if word in OTHER_FRAMES:
            self.take()
            raise self.error(f"coordinate frame '{self.toks[self.i - 1][0]}' is not supported "
                             "(in '" + self.before() + "'): this service only has ICRS "
                             "positions")
        if word in ICRS_FRAMES:
            self.take()
            word = (self.peek() or "").upper()
        if word in REFPOS:
            self.take()
            word = (self.peek() or "").upper()
        if word in FLAVORS:
            self.take()
            if word != "SPHERICAL2":
                raise self.error(f"flavor '{self.toks[self.i - 1][0]}' is not supported (in '"
                                 + self.before() + "'): only SPHERICAL2 (longitude and "
                                 "latitude in degrees)")

    def numbers(self, start: int, name: str, count: int, pairs: bool = False) -> list[float]:
        """``count`` numbers (``pairs``: at least ``count``, an even number), range
        checked for the shape ``name`` (its text begins at ``start``)."""
        nums: list[float] = []
        while len(nums) < count or (pairs and self.is_number()):
            if not self.is_number():
                if pairs and nums:
                    raise self.error(f"a Polygon needs at least three vertices (six numbers), "
                                     f"found {len(nums) // 2} in '{self.before(start)}'")
                raise self.expected("a number")
            tok = self.take()
            value = float(tok)
            if not math.isfinite(value):
                raise self.error(f"the number {tok} is out of range (in "
                                 f"'{self.before(start)}')")
            k = len(nums)
            if k % 2 == 1 and (k < 2 or pairs) and not -90 <= value <= 90:
                raise self.error(f"declination {tok} is outside [-90, 90] (in "
                                 f"'{self.before(start)}')")
            if not pairs and k >= 2 and value < 0:
                what = "radius" if name == "Circle" else ("width" if k == 2 else "height")
                raise self.error(f"a {name} {what} cannot be negative: {tok} (in "
                                 f"'{self.before(start)}')")
            nums.append(value)
            if pairs and len(nums) % 2 == 1 and not self.is_number():
                raise self.expected("a number (the latitude of the vertex)")
        return nums

    def is_number(self) -> bool:
        tok = self.peek()
        return tok is not None and _NUMBER.match(tok) is not None

    def unit(self) -> None:
        if (self.peek() or "").upper() != "UNIT":
            return
        self.take()
        if self.peek() in (None, "(", ")"):
            raise self.expected("a unit")
        tok = self.take()
        if tok.lower() not in ("deg", "degree", "degrees"):
            raise self.error(f"unit '{tok}' is not supported (in '{self.before()}'): this "
                             "service takes positions and sizes in degrees (unit deg)")

    def compound(self, word: str, name: str, start: int, depth: int) -> Region:
        if self.peek() != "(":
            raise self.expected(f"'(' and the regions of the {name}")
        self.take()
        members = []
        while self.peek() != ")":
            if self.peek() is None:
                raise self.expected("')'" if members else "a region")
            if members and (self.peek() or "").upper() not in (*SHAPES, *COMPOUNDS,
                                                               *UNSUPPORTED_SHAPES):
                raise self.expected(f"')' or another region of the {name}")
            members.append(self.region(depth + 1))
        self.take()
        if word == "NOT":
            if len(members) != 1:
                raise self.error(f"Not takes exactly one region in its parentheses, found "
                                 f"{len(members)} in '{self.before(start)}'")
            return Not(members[0])
        if len(members) < 2:
            article = "an" if word == "INTERSECTION" else "a"
            raise self.error(f"{article} {name} needs at least two regions in its parentheses, "
                             f"found {len(members)} in '{self.before(start)}'")
        return (Union if word == "UNION" else Intersection)(tuple(members))
