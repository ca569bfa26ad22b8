"""Extract CNN features of a folder of images: `python -m neuraltalk.features DIR --cnn ...`
(see neuraltalk/cnn/extract.py)."""
import sys

from neuraltalk.cnn.extract import main

if __name__ == "__main__":
    sys.exit(main())
