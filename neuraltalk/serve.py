"""A local web page to try a checkpoint: `python -m neuraltalk.serve CHECKPOINT [--port 8000]
[--host 127.0.0.1]` (see neuraltalk/captions/serve.py)."""
import sys

from neuraltalk.captions.serve import main

if __name__ == "__main__":
    sys.exit(main())
