"""Build dataset.json from raw captions: `python -m neuraltalk.prepare --help`
(the work is in neuraltalk/data/prepare.py)."""
import argparse
import sys

from neuraltalk import cli
from neuraltalk.data import prepare


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m neuraltalk.prepare", description=prepare.__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="source", required=True)
    c = sub.add_parser("coco", help="from MS-COCO captions JSON files",
                       description="dataset.json from MS-COCO captions files and a split file")
    c.add_argument("--captions", nargs="+", required=True,
                   help="captions_*.json files (captions_train2014.json style)")
    c.add_argument("--splits", help="text file of '<file_name> <split>' lines, split one of "
                   "train, val, test, restval (e.g. 'COCO_val2014_000000391895.jpg test')")
    c.add_argument("--default_split", default="restval", choices=("restval", "train"),
                   help="split of the images the split file does not list (default "
                   "restval: driver.py --fold_restval 1 trains on them too)")
    f = sub.add_parser("flickr", help="from a Flickr8k/Flickr30k token file and split lists",
                       description="dataset.json from a Flickr8k/Flickr30k token file "
                       "(IMAGE.jpg#N<TAB>caption lines) and three image lists")
    f.add_argument("--tokens", required=True, help="e.g. Flickr8k.token.txt")
    f.add_argument("--train", required=True, help="training image list, one name a line")
    f.add_argument("--val", required=True, help="validation image list")
    f.add_argument("--test", required=True, help="test image list")
    for s in (c, f):
        s.add_argument("--out", required=True, help="dataset folder to write dataset.json into")
        s.add_argument("--name", default=None, help="dataset name (default: the folder's)")
        s.add_argument("--overwrite", action="store_true",
                       help="replace an existing dataset.json in --out")
    args = p.parse_args(argv)
    return cli.run_reporting_errors(prepare.run, args)


if __name__ == "__main__":
    sys.exit(main())
