"""A local web page to try a checkpoint: `python -m neuraltalk.serve CHECKPOINT [--port 8000]
[--host 127.0.0.1]` (the server is neuraltalk/captions/serve.py)."""
import argparse
import sys

from neuraltalk import cli
from neuraltalk.captions import serve as web


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m neuraltalk.serve", description=web.__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_checkpoint(p)
    p.add_argument("--port", type=int, default=8000, help="port (0: any free one)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default: this machine only)")
    p.add_argument("--workers", type=int, default=2, help="requests served at once")
    p.add_argument("--max_bytes", type=int, default=5 << 20,
                   help="largest request body in bytes (default 5 MiB)")
    p.add_argument("--max_pixels", type=int, default=25_000_000,
                   help="largest image in pixels, checked before decoding")
    p.add_argument("--max_aspect", type=float, default=20.0,
                   help="largest ratio of an image's long side to its short side")
    p.add_argument("--weights", default=None, help="the CNN's weights file (VGG-16 checkpoints)")
    p.add_argument("--data_root", default=None,
                   help="alignment checkpoints: where the dataset of the test sentences lives")
    args = p.parse_args(argv)
    for name in ("workers", "max_bytes", "max_pixels"):
        if getattr(args, name) < 1:
            p.error("--%s must be at least 1" % name)
    if not args.max_aspect >= 1:
        p.error("--max_aspect must be at least 1")
    return cli.run_reporting_errors(web.serve, args)


if __name__ == "__main__":
    sys.exit(main())
