"""Star names as astronomers write them, reduced to one comparable key.

:func:`name_key` maps ``beta Lyr``, ``β Lyr``, ``bet Lyr``, ``beta Lyrae``,
``V* bet Lyr`` and ``bet_Lyr`` to the same key (``bet lyr``), and
``HD 174638`` and ``HD174638`` to ``hd 174638``.  It folds case, treats
``_`` as a blank, writes Bayer Greek letters (spelt out, abbreviated or in
Unicode) as their standard 3-letter abbreviations, constellation names and
genitives as IAU abbreviations, separates catalogue prefixes from numbers,
drops leading zeros of superscript numbers (``alf01`` = ``alpha1`` = ``α¹``)
and drops SIMBAD's ``V*``, ``*``, ``**`` and ``NAME`` prefixes.  Pure: no
Flask, no database.
"""

from __future__ import annotations

import re
import unicodedata

#: the 24 Greek letters: (standard 3-letter abbreviation, name, other spellings, Unicode)
GREEK: tuple[tuple[str, str, tuple[str, ...], str], ...] = (
    ("alf", "alpha", ("alp",), "α"),
    ("bet", "beta", (), "β"),
    ("gam", "gamma", (), "γ"),
    ("del", "delta", (), "δ"),
    ("eps", "epsilon", (), "ε"),
    ("zet", "zeta", (), "ζ"),
    ("eta", "eta", (), "η"),
    ("tet", "theta", ("the",), "θ"),
    ("iot", "iota", (), "ι"),
    ("kap", "kappa", (), "κ"),
    ("lam", "lambda", ("lmd",), "λ"),
    ("mu", "mu", ("mu.",), "μ"),
    ("nu", "nu", ("nu.",), "ν"),
    ("ksi", "xi", ("xi.",), "ξ"),
    ("omi", "omicron", (), "ο"),
    ("pi", "pi", ("pi.",), "π"),
    ("rho", "rho", (), "ρ"),
    ("sig", "sigma", (), "σ"),
    ("tau", "tau", (), "τ"),
    ("ups", "upsilon", (), "υ"),
    ("phi", "phi", (), "φ"),
    ("chi", "chi", (), "χ"),
    ("psi", "psi", (), "ψ"),
    ("ome", "omega", (), "ω"),
)

#: the 88 IAU constellations: (abbreviation, name, genitive)
CONSTELLATIONS: tuple[tuple[str, str, str], ...] = (
    ("And", "Andromeda", "Andromedae"),
    ("Ant", "Antlia", "Antliae"),
    ("Aps", "Apus", "Apodis"),
    ("Aqr", "Aquarius", "Aquarii"),
    ("Aql", "Aquila", "Aquilae"),
    ("Ara", "Ara", "Arae"),
    ("Ari", "Aries", "Arietis"),
    ("Aur", "Auriga", "Aurigae"),
    ("Boo", "Bootes", "Bootis"),
    ("Cae", "Caelum", "Caeli"),
    ("Cam", "Camelopardalis", "Camelopardalis"),
    ("Cnc", "Cancer", "Cancri"),
    ("CVn", "Canes Venatici", "Canum Venaticorum"),
    ("CMa", "Canis Major", "Canis Majoris"),
    ("CMi", "Canis Minor", "Canis Minoris"),
    ("Cap", "Capricornus", "Capricorni"),
    ("Car", "Carina", "Carinae"),
    ("Cas", "Cassiopeia", "Cassiopeiae"),
    ("Cen", "Centaurus", "Centauri"),
    ("Cep", "Cepheus", "Cephei"),
    ("Cet", "Cetus", "Ceti"),
    ("Cha", "Chamaeleon", "Chamaeleontis"),
    ("Cir", "Circinus", "Circini"),
    ("Col", "Columba", "Columbae"),
    ("Com", "Coma Berenices", "Comae Berenices"),
    ("CrA", "Corona Australis", "Coronae Australis"),
    ("CrB", "Corona Borealis", "Coronae Borealis"),
    ("Crv", "Corvus", "Corvi"),
    ("Crt", "Crater", "Crateris"),
    ("Cru", "Crux", "Crucis"),
    ("Cyg", "Cygnus", "Cygni"),
    ("Del", "Delphinus", "Delphini"),
    ("Dor", "Dorado", "Doradus"),
    ("Dra", "Draco", "Draconis"),
    ("Equ", "Equuleus", "Equulei"),
    ("Eri", "Eridanus", "Eridani"),
    ("For", "Fornax", "Fornacis"),
    ("Gem", "Gemini", "Geminorum"),
    ("Gru", "Grus", "Gruis"),
    ("Her", "Hercules", "Herculis"),
    ("Hor", "Horologium", "Horologii"),
    ("Hya", "Hydra", "Hydrae"),
    ("Hyi", "Hydrus", "Hydri"),
    ("Ind", "Indus", "Indi"),
    ("Lac", "Lacerta", "Lacertae"),
    ("Leo", "Leo", "Leonis"),
    ("LMi", "Leo Minor", "Leonis Minoris"),
    ("Lep", "Lepus", "Leporis"),
    ("Lib", "Libra", "Librae"),
    ("Lup", "Lupus", "Lupi"),
    ("Lyn", "Lynx", "Lyncis"),
    ("Lyr", "Lyra", "Lyrae"),
    ("Men", "Mensa", "Mensae"),
    ("Mic", "Microscopium", "Microscopii"),
    ("Mon", "Monoceros", "Monocerotis"),
    ("Mus", "Musca", "Muscae"),
    ("Nor", "Norma", "Normae"),
    ("Oct", "Octans", "Octantis"),
    ("Oph", "Ophiuchus", "Ophiuchi"),
    ("Ori", "Orion", "Orionis"),
    ("Pav", "Pavo", "Pavonis"),
    ("Peg", "Pegasus", "Pegasi"),
    ("Per", "Perseus", "Persei"),
    ("Phe", "Phoenix", "Phoenicis"),
    ("Pic", "Pictor", "Pictoris"),
    ("Psc", "Pisces", "Piscium"),
    ("PsA", "Piscis Austrinus", "Piscis Austrini"),
    ("Pup", "Puppis", "Puppis"),
    ("Pyx", "Pyxis", "Pyxidis"),
    ("Ret", "Reticulum", "Reticuli"),
    ("Sge", "Sagitta", "Sagittae"),
    ("Sgr", "Sagittarius", "Sagittarii"),
    ("Sco", "Scorpius", "Scorpii"),
    ("Scl", "Sculptor", "Sculptoris"),
    ("Sct", "Scutum", "Scuti"),
    ("Ser", "Serpens", "Serpentis"),
    ("Sex", "Sextans", "Sextantis"),
    ("Tau", "Taurus", "Tauri"),
    ("Tel", "Telescopium", "Telescopii"),
    ("Tri", "Triangulum", "Trianguli"),
    ("TrA", "Triangulum Australe", "Trianguli Australis"),
    ("Tuc", "Tucana", "Tucanae"),
    ("UMa", "Ursa Major", "Ursae Majoris"),
    ("UMi", "Ursa Minor", "Ursae Minoris"),
    ("Vel", "Vela", "Velorum"),
    ("Vir", "Virgo", "Virginis"),
    ("Vol", "Volans", "Volantis"),
    ("Vul", "Vulpecula", "Vulpeculae"),
)

#: SIMBAD's prefixes of an identifier, as tokens (``V*`` is ``v`` ``*``)
SIMBAD_PREFIXES: tuple[tuple[str, ...], ...] = (("v", "*"), ("*", "*"), ("*",), ("name",))


def _greek_table() -> dict[str, str]:
    out: dict[str, str] = {}
    for abbr, name, others, letter in GREEK:
        for spelling in (abbr, name, *others, letter):
            out[spelling.rstrip(".")] = abbr
    out["ς"] = "sig"  # final sigma
    out["omikron"] = "omi"
    return out


def _constellation_table() -> dict[tuple[str, ...], str]:
    out: dict[tuple[str, ...], str] = {}
    for abbr, name, genitive in CONSTELLATIONS:
        for spelling in (abbr, name, genitive):
            out[tuple(_fold(spelling).split())] = abbr.lower()
    # "Scorpio", "Serpens Caput/Cauda": common informal spellings
    out[("scorpio",)] = "sco"
    return out


def _fold(text: str) -> str:
    """NFKC (superscripts become digits), accents dropped (Boötes), lower case."""
    text = unicodedata.normalize("NFKC", text)
    decomposed = unicodedata.normalize("NFD", text)
    bare = "".join(c for c in decomposed if unicodedata.category(c) != "Mn")
    return unicodedata.normalize("NFC", bare).casefold()


GREEK_KEYS = _greek_table()
CONSTELLATION_KEYS = _constellation_table()
_LONGEST_CONSTELLATION = max(len(k) for k in CONSTELLATION_KEYS)
_TOKEN = re.compile(r"[a-z]+|[\u0370-\u03ff]|\d+|[^\W\d_]+|[^\w\s]")


def tokens(name: str) -> list[str]:
    """The folded words of a name: letter runs, Greek letters, digit runs, signs."""
    return _TOKEN.findall(_fold(name).replace("_", " "))


def name_key(name: str) -> str:
    """The comparable key of a star name (empty for a name without words)."""
    words = [w for w in tokens(name) if w != "."]
    for prefix in SIMBAD_PREFIXES:
        if tuple(words[:len(prefix)]) == prefix and len(words) > len(prefix):
            words = words[len(prefix):]
            break
    out: list[str] = []
    i = 0
    while i < len(words):
        for size in range(min(_LONGEST_CONSTELLATION, len(words) - i), 1, -1):
            abbr = CONSTELLATION_KEYS.get(tuple(words[i:i + size]))
            if abbr is not None:
                out.append(abbr)
                i += size
                break
        else:
            word = words[i]
            greek = GREEK_KEYS.get(word)
            if greek is not None:
                out.append(greek)
                # a superscript number: alf01 = alpha1 = alf 1
                if i + 1 < len(words) and words[i + 1].isdigit():
                    out.append(str(int(words[i + 1])))
                    i += 1
            else:
                out.append(CONSTELLATION_KEYS.get((word,), word))
            i += 1
    return " ".join(out)


def catalogue_alias(catalogue: str | None, value: str | None) -> str | None:
    """The identifier a catalogue and a value make, e.g. ``HD`` + ``174638`` -> ``HD 174638``.

    A value that already names its catalogue (``HD 174638``) stays as it is;
    a bare number without a catalogue is no name (None).
    """
    value = (value or "").strip()
    catalogue = (catalogue or "").strip()
    if not value:
        return None
    if catalogue and not name_key(value).startswith(name_key(catalogue) + " "):
        return f"{catalogue} {value}"
    if not catalogue and value.isdigit():
        return None
    return value
