"""`python -m mergeforge ARGS` (and the `mergeforge` command pip installs): the launcher, found as
the package finds it, run with ARGS in this process's place."""

import os
import sys

from ._launcher import LauncherNotFound, find_launcher


def main(argv=None):
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        launcher = find_launcher()
    except LauncherNotFound as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(launcher, [launcher, *args])
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
