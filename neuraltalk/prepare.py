"""Build dataset.json from raw captions: `python -m neuraltalk.prepare --help`
(see neuraltalk/data/prepare.py)."""
import sys

from neuraltalk.data.prepare import main

if __name__ == "__main__":
    sys.exit(main())
