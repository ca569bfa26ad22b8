"""Caption a folder of images: `python predict_on_images.py cv/checkpoint.p -r DIR`
(or `cv/` for the best checkpoint of the run in cv/).

DIR holds the images, tasks.txt and vgg_feats.mat; result_struct.json and result.html
are written there.
"""
import argparse
import sys

from neuraltalk import cli


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    cli.add_checkpoint(p)
    p.add_argument("-r", "--root_path", default="example_images",
                   help="folder with the images, tasks.txt and vgg_feats.mat")
    cli.add_beam_size(p)
    args = p.parse_args(argv)
    cli.check_beam_size(p, args)
    from neuraltalk.captions.predict import predict_folder
    from neuraltalk.train.runs import checkpoint_file
    return cli.run_reporting_errors(lambda: predict_folder(checkpoint_file(args.checkpoint_path),
                                                       args.root_path, args.beam_size))


if __name__ == "__main__":
    sys.exit(main())
