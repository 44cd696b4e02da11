"""`python -m dataops_dev`."""

import sys

from dataops_dev import interrupts

if __name__ == "__main__":
    # Before the heavier imports: a signal during start-up is an interruption like any other.
    interrupts.install()
    try:
        from dataops_dev.cli import main
    except KeyboardInterrupt:
        interrupts.finish()
        print("interrupted", file=sys.stderr)
        sys.exit(interrupts.exit_code(interrupts.requested()))
    main()
