"""Hypothesis: the data loaders read any file content or refuse it with a DataError."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from training.data import LabelledTexts, load_dataset
from training.exceptions import DataError

CONTENT = st.one_of(
    st.binary(max_size=800),
    st.text(max_size=800).map(str.encode),
    st.lists(st.tuples(st.text(max_size=30), st.text(max_size=10)), max_size=10).map(
        lambda rows: ("text,label\n" + "\n".join(f"{a},{b}" for a, b in rows)).encode()),
)


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl", ".yml"])
@settings(max_examples=120, deadline=None)
@given(content=CONTENT)
def test_loaders_read_or_refuse_any_content(suffix: str, content: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"data{suffix}"
        path.write_bytes(content)
        try:
            dataset = load_dataset(path)
        except DataError:
            return
    assert isinstance(dataset, LabelledTexts)
    assert len(dataset.texts) == len(dataset.labels)
