"""DICOM date (DA), time (TM) and date-time (DT) strings as Python datetimes.

Vendors write these loosely (``"084500.00 "``, ``"11:20:11"``, ``"1120"``, a DT with a UTC offset), so the
parsers are lenient about form and strict about meaning: a value that cannot be read returns ``None``
and the caller decides whether that is an error.
"""

from __future__ import annotations

import datetime as dt
import re

_TIME = re.compile(r"^(\d{2})(\d{2})?(\d{2})?(?:\.(\d{1,6}))?$")
_DATETIME = re.compile(r"^(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:\.(\d{1,6}))?([+-]\d{4})?$")


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        value = value.decode("ascii", errors="replace")
    return str(value).strip().strip("\x00").strip()


def parse_da(value: object) -> dt.date | None:
    """A DICOM DA (``YYYYMMDD``, or the old ``YYYY.MM.DD``) as a date.

    >>> parse_da("20250101")
    datetime.date(2025, 1, 1)
    >>> parse_da("") is None
    True
    """
    text = _text(value).replace(".", "").replace("-", "")
    if len(text) != 8 or not text.isdigit():
        return None
    try:
        return dt.date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    except ValueError:
        return None


def parse_tm(value: object) -> dt.time | None:
    """A DICOM TM (``HH``, ``HHMM``, ``HHMMSS.FFFFFF``, or the old ``HH:MM:SS``) as a time.

    >>> parse_tm("084500.00 ")
    datetime.time(8, 45)
    >>> parse_tm("11:20:11")
    datetime.time(11, 20, 11)
    """
    match = _TIME.match(_text(value).replace(":", ""))
    if not match:
        return None
    hours, minutes, seconds, fraction = match.groups()
    try:
        return dt.time(
            int(hours),
            int(minutes or 0),
            int(seconds or 0),
            int((fraction or "0").ljust(6, "0")),
        )
    except ValueError:
        return None


def parse_dt(value: object) -> dt.datetime | None:
    """A DICOM DT (``YYYYMMDDHHMMSS.FFFFFF&ZZXX``) as a naive local datetime (any UTC offset dropped).

    The offset is dropped because every other DICOM time in a series (SeriesTime, AcquisitionTime) is local
    time without an offset; the differences between them are what matter.

    >>> parse_dt("20201217084500.00 ")
    datetime.datetime(2020, 12, 17, 8, 45)
    """
    match = _DATETIME.match(_text(value))
    if not match:
        return None
    year, month, day, hours, minutes, seconds, fraction, _offset = match.groups()
    try:
        return dt.datetime(
            int(year),
            int(month or 1),
            int(day or 1),
            int(hours or 0),
            int(minutes or 0),
            int(seconds or 0),
            int((fraction or "0").ljust(6, "0")),
        )
    except ValueError:
        return None


def combine(date_value: object, time_value: object) -> dt.datetime | None:
    """A DA and a TM together as one datetime, or ``None`` when either cannot be read.

    >>> combine("20250102", "003000")
    datetime.datetime(2025, 1, 2, 0, 30)
    """
    date, time = parse_da(date_value), parse_tm(time_value)
    if date is None or time is None:
        return None
    return dt.datetime.combine(date, time)
