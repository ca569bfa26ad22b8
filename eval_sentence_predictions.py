"""Score a checkpoint on a test split: `python eval_sentence_predictions.py cv/checkpoint.p`,
or `python eval_sentence_predictions.py cv/` for the best checkpoint of the run in cv/.

Caption generators: BLEU-1..4, METEOR, ROUGE-L, CIDEr-D, perplexity; writes
result_struct.json and result.html. Alignment models (--model brnn): image-sentence
retrieval R@1/5/10 and median rank; writes retrieval.json.
"""
import argparse
import sys

from neuraltalk.errors import run_reporting_errors


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("checkpoint_path", help="a checkpoint written by driver.py or NeuralTalk, "
                   "or a run's folder (its best checkpoint)")
    p.add_argument("--split", default="test", choices=["train", "val", "test", "restval"],
                   help="the split to evaluate")
    p.add_argument("--max_images", type=int, default=-1, help="at most this many images (-1: all)")
    p.add_argument("-b", "--beam_size", type=int, default=1, help="beam size (1: greedy)")
    p.add_argument("--out", default=None, help="output folder (default: the checkpoint's)")
    p.add_argument("--data_root", default=None,
                   help="where dataset folders live (default: as in training)")
    p.add_argument("--no_meteor", action="store_true", help="skip METEOR (it needs Java)")
    args = p.parse_args(argv)
    if args.beam_size < 1:
        p.error("--beam_size must be at least 1")
    from neuraltalk.evaluate import evaluate_checkpoint
    from neuraltalk.runs import checkpoint_file
    return run_reporting_errors(lambda: evaluate_checkpoint(
        checkpoint_file(args.checkpoint_path), args.split, args.max_images, args.beam_size,
        args.out, args.data_root, with_meteor=not args.no_meteor))


if __name__ == "__main__":
    sys.exit(main())
