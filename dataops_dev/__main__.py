"""`python -m dataops_dev`."""

from dataops_dev import interrupts

if __name__ == "__main__":
    # Before the heavier imports: a signal during start-up is an interruption like any other.
    interrupts.install()

from dataops_dev.cli import main  # noqa: E402

if __name__ == "__main__":
    main()
