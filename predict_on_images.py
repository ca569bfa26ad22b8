"""Caption a folder of images: `python predict_on_images.py cv/checkpoint.p -r DIR`
(or `cv/` for the best checkpoint of the run in cv/).

DIR holds the images, tasks.txt and vgg_feats.mat; result_struct.json and result.html
are written there. A folder of plain photos needs neither file when the checkpoint's CNN
runs here (efficientnet-lite0, the demo's extractor).

Without -r, a checkpoint trained on the demo dataset `shapes` captions --num_images fresh
demo scenes (--seed), rendered into a new folder demo_scenes_seed<seed> beside it.
"""
import argparse
import sys

from neuraltalk import cli


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_checkpoint(p)
    p.add_argument("-r", "--root_path", default=None,
                   help="folder with the images (and tasks.txt and vgg_feats.mat, unless the "
                        "checkpoint's CNN runs here); default: fresh demo scenes for a "
                        "checkpoint trained on shapes")
    p.add_argument("--seed", type=int, default=0, help="without -r: the demo scenes' seed")
    p.add_argument("--num_images", type=int, default=6,
                   help="without -r: how many demo scenes to render")
    cli.add_beam_size(p)
    args = p.parse_args(argv)
    cli.check_beam_size(p, args)
    from neuraltalk.captions.predict import predict_folder, predict_without_folder
    from neuraltalk.train.runs import checkpoint_file

    def predict():
        checkpoint = checkpoint_file(args.checkpoint_path)
        if args.root_path is None:
            return predict_without_folder(checkpoint, args.seed, args.num_images,
                                          args.beam_size)
        return predict_folder(checkpoint, args.root_path, args.beam_size)
    return cli.run_reporting_errors(predict)


if __name__ == "__main__":
    sys.exit(main())
