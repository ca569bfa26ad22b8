"""Extract CNN features of a folder of images: `python -m neuraltalk.features DIR --cnn ...`
(the flags here; the work in neuraltalk/cnn/extract.py, and for sharded jobs in
neuraltalk/cnn/shards.py)."""
import argparse
import sys

from neuraltalk.cli import run_reporting_errors
from neuraltalk.cnn import extract


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m neuraltalk.features",
                                description=extract.__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folder", help="folder of images")
    p.add_argument("--cnn", default=None, choices=extract.CNNS,
                   help="the CNN (default: %s; with --merge_shards, the parts' own)"
                        % extract.DEFAULT_CNN)
    p.add_argument("--weights", default=None,
                   help="weights file (vgg16: the Keras .h5 or an .npz; efficientnet-lite0: "
                        "the package's .pth by default)")
    p.add_argument("--regions", default=None,
                   help="also write regions.h5: a JSON of boxes per image file name, or "
                        "'multicrop' for the whole image plus fixed crops of each")
    p.add_argument("--grid", action="store_true",
                   help="also write the last convolutional map as regions.h5 (one region "
                        "per cell), for --generator attention")
    p.add_argument("--batch_size", type=int, default=16)
    p.add_argument("--shard", default=None, metavar="I/K",
                   help="extract only part I of K (1 <= I <= K) as an independent job, into "
                        "DIR/feature_parts/part-I-of-K.npz; then --merge_shards K")
    p.add_argument("--merge_shards", type=int, default=None, metavar="K",
                   help="write the folder's features from the K parts made by --shard I/K "
                        "(checked: all there, the same CNN, flags and images)")
    args = p.parse_args(argv)
    return run_reporting_errors(extract.extract_folder, args)


if __name__ == "__main__":
    sys.exit(main())
