"""`python -m dataops_dev`."""

from dataops_dev.cli import main

if __name__ == "__main__":
    main()
