"""``python -m cascade ...``: the same command line as the ``cascade`` script."""
from .cli import main

if __name__ == "__main__":
    main()
