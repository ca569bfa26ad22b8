"""MRF snippets of an alignment checkpoint: `python -m neuraltalk.mrf CHECKPOINT`
(see neuraltalk/alignment/mrf.py)."""
import sys

from neuraltalk.alignment.mrf import main

if __name__ == "__main__":
    sys.exit(main())
