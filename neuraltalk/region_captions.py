"""Region datasets and region captions: `python -m neuraltalk.region_captions CHECKPOINT`
(see neuraltalk/alignment/region_captions.py)."""
import sys

from neuraltalk.alignment.region_captions import main

if __name__ == "__main__":
    sys.exit(main())
