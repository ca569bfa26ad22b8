"""MRF snippets of an alignment checkpoint: `python -m neuraltalk.mrf CHECKPOINT`
(the work is in neuraltalk/alignment/mrf.py)."""
import argparse
import sys

from neuraltalk import cli
from neuraltalk.alignment import mrf


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m neuraltalk.mrf", description=mrf.__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_checkpoint(p, help="an alignment model checkpoint, or its run's folder")
    p.add_argument("--split", default="test")
    cli.add_max_images(p)
    p.add_argument("--beta", type=float, default=None, help="default: the checkpoint's")
    cli.add_out(p)
    cli.add_data_root(p)
    args = p.parse_args(argv)
    return cli.run_reporting_errors(mrf.write_snippets, args)


if __name__ == "__main__":
    sys.exit(main())
