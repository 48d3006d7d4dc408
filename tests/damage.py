"""Damaged files for the readers' fuzz tests (`tests/test_data_idx.py`,
`tests/test_data_folder.py`): what an interrupted download or a bad disk leaves."""

from hypothesis import strategies as st


def damage(data: bytes, draw) -> bytes:
    """``data`` cut at an arbitrary byte, or with 1 to 4 bytes overwritten (``draw`` is
    hypothesis's ``st.data().draw``)."""
    if draw(st.booleans()):
        return data[:draw(st.integers(0, len(data) - 1))]
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        out[draw(st.integers(0, len(out) - 1))] = draw(st.integers(0, 255))
    return bytes(out)
