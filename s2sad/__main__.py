"""`python -m s2sad` / the `s2sad` console script: see `s2sad.cli`."""

import sys

from .cli import main as cli_main


def main(argv=None):
    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
