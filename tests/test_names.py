"""Star-name normalisation (voservice.names): the ways astronomers write one name."""

from __future__ import annotations

import pytest

from voservice.names import (
    CONSTELLATIONS,
    GREEK,
    catalogue_alias,
    name_key,
)

SAME = {
    "bet lyr": ["bet_Lyr", "beta Lyr", "β Lyr", "bet Lyr", "beta Lyrae", "V* bet Lyr",
                "* bet Lyr", "BETA LYRAE", "  beta   lyr ", "Beta_Lyrae", "βLyr", "bet. Lyr",
                "beta Lyra"],
    "hd 174638": ["HD 174638", "HD174638", "hd_174638", "HD  174638", "hd174638"],
    "w uma": ["W_UMa", "W UMa", "W Ursae Majoris", "V* W UMa", "w ursa major"],
    "alf 1 cvn": ["alf01 CVn", "alpha1 CVn", "α¹ CVn", "alf 1 CVn", "alp01 Canum Venaticorum",
                  "α1 CVn"],
    "del cep": ["del_Cep", "delta Cephei", "δ Cep", "V* del Cep", "del Cepheus"],
    "eps boo": ["eps Boo", "ε Bootis", "epsilon Boötes", "eps Boötis"],
    "tet 1 ori": ["tet01 Ori", "theta1 Orionis", "θ¹ Ori", "ϑ1 Ori"],
    "mu cep": ["mu. Cep", "μ Cephei", "mu Cep", "µ Cep"],  # the last is the micro sign
    "ksi uma": ["ksi UMa", "xi Ursae Majoris", "ξ UMa"],
    "rr lyr": ["RR_Lyr", "RR Lyrae", "V* RR Lyr"],
    "v 1500 cyg": ["V1500 Cyg", "V* V1500 Cyg", "V 1500 Cygni"],
    "alf psa": ["alf PsA", "alpha Piscis Austrini", "α Piscis Austrinus"],
    "sig sgr": ["sig Sgr", "sigma Sagittarii", "σ Sgr", "ς Sgr"],
    "sheliak": ["Sheliak", "NAME Sheliak", "SHELIAK"],
    "r crb": ["R CrB", "R Coronae Borealis", "R_CrB"],
}


@pytest.mark.parametrize("key", sorted(SAME))
def test_spellings_of_one_name_share_a_key(key: str) -> None:
    assert {name: name_key(name) for name in SAME[key]} == {name: key for name in SAME[key]}


@pytest.mark.parametrize("one,other", [
    ("bet Lyr", "bet Per"), ("alf01 CVn", "alf02 CVn"), ("alf01 CVn", "alf CVn"),
    ("HD 174638", "HD 17463"), ("HD 174638", "HIP 174638"), ("R Cas", "RR Cas"),
    ("bet Lyr", "Lyr"), ("eta Car", "eta Cas"), ("V* bet Lyr", "V bet Lyr"),
])
def test_different_names_keep_different_keys(one: str, other: str) -> None:
    assert name_key(one) != name_key(other)


def test_every_greek_letter_in_every_spelling() -> None:
    assert len(GREEK) == 24
    assert len({abbr for abbr, *_ in GREEK}) == 24
    for abbr, name, _others, letter in GREEK:
        expected = f"{abbr} lyr"
        assert name_key(f"{name} Lyr") == expected
        assert name_key(f"{name.upper()} Lyrae") == expected
        assert name_key(f"{abbr} Lyr") == expected
        assert name_key(f"{letter} Lyr") == expected
        assert name_key(f"{letter.upper()} Lyr") == expected  # capital Greek letters fold
        assert name_key(f"{abbr}02 Lyr") == f"{abbr} 2 lyr"
        assert name_key(f"{name}2 Lyr") == f"{abbr} 2 lyr"


def test_all_88_constellations_by_name_genitive_and_abbreviation() -> None:
    assert len(CONSTELLATIONS) == 88
    assert len({abbr.lower() for abbr, *_ in CONSTELLATIONS}) == 88
    for abbr, name, genitive in CONSTELLATIONS:
        expected = f"r {abbr.lower()}"
        for spelling in (abbr, abbr.upper(), name, genitive, genitive.lower()):
            assert name_key(f"R {spelling}") == expected, spelling
            assert name_key(f"R_{spelling.replace(' ', '_')}") == expected, spelling


def test_simbad_prefixes_only_in_front() -> None:
    assert name_key("V* R Cas") == "r cas"
    assert name_key("** STF 2272") == "stf 2272"
    assert name_key("*") == "*"  # nothing after the prefix: kept
    assert name_key("") == ""
    assert name_key("  _ ") == ""


def test_catalogue_aliases() -> None:
    assert catalogue_alias("HD", "174638") == "HD 174638"
    assert catalogue_alias("HD", "HD 174638") == "HD 174638"
    assert catalogue_alias("HD", "HD174638") == "HD174638"
    assert catalogue_alias("HIP", "92420") == "HIP 92420"
    assert catalogue_alias("", "174638") is None  # a bare number names nothing
    assert catalogue_alias(None, "bet Lyr") == "bet Lyr"
    assert catalogue_alias("HD", "") is None
