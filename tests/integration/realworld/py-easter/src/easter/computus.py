"""The two computus algorithms: the anonymous Gregorian one (Meeus, Jones,
Butcher) and Meeus's Julian one, whose result is converted to the Gregorian
calendar."""

import datetime


def western(year: int) -> datetime.date:
    """Easter Sunday of the Gregorian calendar (1583 and later)."""
    if year < 1583:
        raise ValueError(f"{year}: the Gregorian computus starts in 1583")
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    l = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * l) // 451
    month, day = divmod(h + l - 7 * m + 114, 31)
    return datetime.date(year, month, day + 1)


def julian_to_gregorian_offset(year: int, month: int) -> int:
    """Days the Julian calendar lags the Gregorian one on a date in that
    year and month (13 from March 1900 to February 2100)."""
    y = year if month > 2 else year - 1
    century = y // 100
    return century - century // 4 - 2


def orthodox(year: int) -> datetime.date:
    """Easter Sunday of the Julian computus, as a Gregorian date."""
    if year < 1583:
        raise ValueError(f"{year}: only years from 1583 on")
    a = year % 4
    b = year % 7
    c = year % 19
    d = (19 * c + 15) % 30
    e = (2 * a + 4 * b - d + 34) % 7
    month, day = divmod(d + e + 114, 31)
    julian = datetime.date(year, month, day + 1)
    return julian + datetime.timedelta(days=julian_to_gregorian_offset(year, month))
