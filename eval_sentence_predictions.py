"""Score a checkpoint on a test split: `python eval_sentence_predictions.py cv/checkpoint.p`,
or `python eval_sentence_predictions.py cv/` for the best checkpoint of the run in cv/.

Caption generators: BLEU-1..4, METEOR, ROUGE-L, CIDEr-D, perplexity; writes
result_struct.json and result.html. Alignment models (--model brnn): image-sentence
retrieval R@1/5/10 and median rank; writes retrieval.json. With --retrieval, a caption
generator does the same retrieval, ranking by each sentence's likelihood given the image.

`mpirun -n K python eval_sentence_predictions.py ...` shares the work across K ranks (the
images to caption, or the alignment model's sentences to score); rank 0 alone prints and
writes, the same files as one process.
"""
import argparse
import os
import sys

from neuraltalk import cli


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    cli.add_checkpoint(p)
    p.add_argument("--split", default="test", choices=["train", "val", "test", "restval"],
                   help="the split to evaluate")
    cli.add_max_images(p)
    cli.add_beam_size(p)
    cli.add_out(p)
    cli.add_data_root(p)
    p.add_argument("--no_meteor", action="store_true", help="skip METEOR (it needs Java)")
    p.add_argument("--retrieval", action="store_true",
                   help="caption generators: image-sentence retrieval by likelihood (R@1/5/10, "
                        "median rank) instead of captioning; writes retrieval.json")
    args = p.parse_args(argv)
    cli.check_beam_size(p, args)
    return cli.run_reporting_errors(evaluate, args)


def evaluate(args):
    """A caption generator is scored by its captions (or, with --retrieval, by retrieval
    by likelihood), an alignment model by retrieval."""
    from neuraltalk.alignment import retrieval
    from neuraltalk.captions import evaluate
    from neuraltalk.data.dataset import check_max_images
    from neuraltalk.models import is_generator
    from neuraltalk.train.checkpoint import load_checkpoint
    from neuraltalk.train.runs import checkpoint_file, output_folder
    from neuraltalk.parallel import collectively, world

    def load():  # on every rank of an MPI job; a bad path is reported once, by rank 0
        check_max_images(args.max_images)
        path = checkpoint_file(args.checkpoint_path)
        return path, load_checkpoint(path)
    path, checkpoint = collectively(world(), load)
    if is_generator(checkpoint["params"]) and args.retrieval:
        from neuraltalk.captions.retrieval import evaluate_retrieval
        return evaluate_retrieval(path, args.split, args.max_images, args.out, args.data_root)
    if is_generator(checkpoint["params"]):
        return evaluate.evaluate_checkpoint(path, args.split, args.max_images, args.beam_size,
                                            args.out, args.data_root,
                                            with_meteor=not args.no_meteor, checkpoint=checkpoint)
    out = output_folder(args.out or os.path.dirname(os.path.abspath(path)))
    return retrieval.evaluate_checkpoint(checkpoint, path, args.split, args.max_images, out,
                                         args.data_root)


if __name__ == "__main__":
    sys.exit(main())
