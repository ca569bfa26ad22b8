"""Score a checkpoint on a test split: `python eval_sentence_predictions.py cv/checkpoint.p`,
or `python eval_sentence_predictions.py cv/` for the best checkpoint of the run in cv/.

Caption generators: BLEU-1..4, METEOR, ROUGE-L, CIDEr-D, perplexity; writes
result_struct.json and result.html. Alignment models (--model brnn): image-sentence
retrieval R@1/5/10 and median rank; writes retrieval.json. With --retrieval, a caption
generator does the same retrieval, ranking by each sentence's likelihood given the image.
"""
import argparse
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
    from neuraltalk.train.runs import checkpoint_file
    if args.retrieval:
        from neuraltalk.captions.retrieval import evaluate_retrieval
        return cli.run_reporting_errors(lambda: evaluate_retrieval(
            checkpoint_file(args.checkpoint_path), args.split, args.max_images, args.out,
            args.data_root))
    from neuraltalk.captions.evaluate import evaluate_checkpoint
    return cli.run_reporting_errors(lambda: evaluate_checkpoint(
        checkpoint_file(args.checkpoint_path), args.split, args.max_images, args.beam_size,
        args.out, args.data_root, with_meteor=not args.no_meteor))


if __name__ == "__main__":
    sys.exit(main())
