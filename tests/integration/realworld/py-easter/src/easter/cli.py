"""easter [YEAR...]: one line per year with both dates and the days between
them, then the years in which both churches keep Easter on the same day."""

import argparse
import sys

from . import computus


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="easter", description=__doc__)
    parser.add_argument("years", nargs="+", type=int, metavar="YEAR")
    args = parser.parse_args(argv)
    same = []
    for year in args.years:
        try:
            west, east = computus.western(year), computus.orthodox(year)
        except ValueError as err:
            print(f"easter: {err}", file=sys.stderr)
            return 1
        gap = (east - west).days
        print(f"{year}: western {west.isoformat()} ({west:%a}), "
              f"orthodox {east.isoformat()} ({east:%a}), {gap} days apart")
        if gap == 0:
            same.append(str(year))
    print("same day in: " + (", ".join(same) if same else "none"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
