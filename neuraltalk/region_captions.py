"""Region datasets and region captions: `python -m neuraltalk.region_captions CHECKPOINT`
(the work is in neuraltalk/alignment/region_captions.py)."""
import argparse
import sys

from neuraltalk import cli
from neuraltalk.alignment import region_captions


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m neuraltalk.region_captions", description=region_captions.__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_checkpoint(p, help="an alignment model checkpoint (--model brnn): build the region "
                       "dataset; or a generator trained on one: caption regions")
    p.add_argument("--out", default=None, help="alignment checkpoint: folder of the region "
                   "dataset to write (required); generator: output folder (default: the "
                   "checkpoint's)")
    p.add_argument("--beta", type=float, default=None, help="MRF smoothness (default: the checkpoint's)")
    p.add_argument("--min_words", type=int, default=2, help="shortest snippet kept")
    p.add_argument("--split", default="test", help="generator: the split whose regions to caption")
    cli.add_beam_size(p, help="generator: beam size")
    cli.add_max_images(p, help="generator: at most this many images (-1: all)")
    p.add_argument("--dataset", default=None, help="generator: the dataset whose regions to "
                   "caption (default: the one the region dataset came from)")
    cli.add_data_root(p)
    p.add_argument("--overwrite", action="store_true", help="alignment checkpoint: replace a "
                   "region dataset already in --out (never the dataset it is made from)")
    args = p.parse_args(argv)
    cli.check_beam_size(p, args)
    return cli.run_reporting_errors(region_captions.run, args)


if __name__ == "__main__":
    sys.exit(main())
