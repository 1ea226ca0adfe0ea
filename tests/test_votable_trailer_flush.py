"""The VOTable writer never drops what it holds when the last block crosses its
flush size: a long trailer (e.g. one INFO note per converted night of a star curve)
after the rows, in every VOTable serialisation and in JSON."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from astropy.io.votable import parse as parse_votable

from voservice.votable import Columns, Field, Info, TablePart, write_tables
from voservice.votable.writer import _FLUSH


@pytest.mark.parametrize("fmt", ["votable/binary2", "votable/binary", "votable/td", "json"])
@pytest.mark.parametrize("n_notes", [1, 40, 4000])
def test_a_long_trailer_after_the_rows_is_written_whole(fmt: str, n_notes: int) -> None:
    n = 3000
    fields = [Field("time", "double", unit="d"), Field("label", "char", arraysize="*")]
    chunks = [Columns([np.arange(k, k + 500, dtype=float), np.full(500, "x" * 20)])
              for k in range(0, n, 500)]
    notes = [Info("note", f"night {i}: input heliocenter times brought back to the observer "
                          "before correcting") for i in range(n_notes)]
    # the largest trailer alone is more than a flush: its block crosses it
    assert n_notes < 4000 or sum(len(i.value) for i in notes) > _FLUSH
    out = b"".join(write_tables([TablePart(fields=fields, chunks=iter(chunks),
                                           trailer=lambda: notes)], format=fmt))
    if fmt == "json":
        doc = json.loads(out)
        assert len(doc["data"]) == n
        return
    table = parse_votable(io.BytesIO(out)).get_first_table()
    assert np.array_equal(np.asarray(table.array["time"], float), np.arange(n, dtype=float))
    assert out.rstrip().endswith(b"</VOTABLE>")
    assert out.count(b'<INFO name="note"') == n_notes
