"""Caption a folder of images: `python predict_on_images.py cv/checkpoint.p -r DIR`
(or `cv/` for the best checkpoint of the run in cv/).

DIR holds the images, tasks.txt and vgg_feats.mat; result_struct.json and result.html
are written there.
"""
import argparse
import sys

from neuraltalk.errors import run_reporting_errors


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("checkpoint_path", help="a checkpoint written by driver.py or NeuralTalk, "
                   "or a run's folder (its best checkpoint)")
    p.add_argument("-r", "--root_path", default="example_images",
                   help="folder with the images, tasks.txt and vgg_feats.mat")
    p.add_argument("-b", "--beam_size", type=int, default=1, help="beam size (1: greedy)")
    args = p.parse_args(argv)
    if args.beam_size < 1:
        p.error("--beam_size must be at least 1")
    from neuraltalk.predict import predict_folder
    from neuraltalk.runs import checkpoint_file
    return run_reporting_errors(lambda: predict_folder(checkpoint_file(args.checkpoint_path),
                                                       args.root_path, args.beam_size))


if __name__ == "__main__":
    sys.exit(main())
