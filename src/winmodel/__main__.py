"""Run the command line as ``python -m winmodel``."""

from winmodel.cli import main

if __name__ == "__main__":
    main()
