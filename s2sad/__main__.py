"""`python -m s2sad` / the `s2sad` console script."""

import sys


def main(argv=None):
    print("s2sad command line: not implemented yet (see issue 5)", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
