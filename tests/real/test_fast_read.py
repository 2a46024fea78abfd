"""The fast Part-10 reader gives what pydicom gives, on every real file (implicit and explicit VR)."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest

from onconet.data.dicom import _READ_TAG_SET, _READ_TAGS_WITH_PIXELS, HEADER_KEYWORDS
from onconet.data.fast_read import fast_read
from onconet.data.header import header_text
from onconet.data.suv import GE_PET_CREATOR, PHILIPS_CREATOR, private_value

pytestmark = pytest.mark.real

PRIVATE = [(0x0009, 0x0D, GE_PET_CREATOR), (0x7053, 0x00, PHILIPS_CREATOR), (0x7053, 0x09, PHILIPS_CREATOR)]


def test_fast_reader_agrees_with_pydicom(realdata_root: Path) -> None:
    files = sorted(p for p in realdata_root.rglob("*.dcm"))
    read = fell_back = 0
    for path in files:
        fast = fast_read(path, _READ_TAG_SET, pixels=True)
        if fast is None:
            fell_back += 1
            continue
        read += 1
        reference = pydicom.dcmread(path, specific_tags=_READ_TAGS_WITH_PIXELS)
        for keyword in HEADER_KEYWORDS:
            if keyword == "RadiopharmaceuticalInformationSequence":
                assert str(fast.get(keyword)) == str(reference.get(keyword)), path
            else:
                assert header_text(fast, keyword) == header_text(reference, keyword), (path, keyword)
        for group, offset, creator in PRIVATE:
            assert private_value(fast, group, offset, creator) == private_value(
                reference, group, offset, creator
            )
        assert fast.get("PixelData") == reference.get("PixelData"), path
    assert read > 700 and fell_back < 10
