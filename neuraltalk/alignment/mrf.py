"""Text snippets for image regions: the MRF of the paper's Section 3.1.4.

For a sentence of N words and an image of M regions, each word j gets a region a_j; the
assignment maximises
    E(a) = sum_j v_{a_j} . s_j + beta * sum_j 1[a_j = a_{j+1}]
exactly, by dynamic programming (Viterbi) over the chain of words. Runs of words with
the same region are that region's snippets; larger beta gives longer snippets.

    python -m neuraltalk.mrf cv/alignment_checkpoint.p [--split test] [--beta 1]
writes snippets.json (per image: its sentences' assignments and snippets, and each
region's box and snippets; see `by_image`) and snippets.html (boxes over each image,
each region's snippets beside it) and prints the snippet-region accuracy where the
dataset knows which object each word describes (the demo's token_region).
"""
import html
import json
import os

import numpy as np

from neuraltalk.errors import NeuralTalkError


def viterbi(unary, beta):
    """unary (N, M): v_i . s_j for word j and region i. Returns a (N,) maximising E(a)."""
    N, M = unary.shape
    score = unary[0].copy()
    back = np.zeros((N, M), dtype=np.int64)
    for j in range(1, N):  # the chain's dynamic programme: one step per word
        stay = score + beta
        best = int(score.argmax())
        back[j] = np.where(stay >= score[best], np.arange(M), best)
        score = np.maximum(stay, score[best]) + unary[j]
    a = np.empty(N, dtype=np.int64)
    a[-1] = int(score.argmax())
    for j in range(N - 1, 0, -1):
        a[j - 1] = back[j, a[j]]
    return a


def energy(unary, beta, a):
    return float(unary[np.arange(len(a)), a].sum() + beta * np.sum(a[1:] == a[:-1]))


def snippets(tokens, assignment):
    """[(region, 'words of one run')] for runs of consecutive words with the same region."""
    runs = []
    for word, region in zip(tokens, assignment):
        if runs and runs[-1][0] == region:
            runs[-1][1].append(word)
        else:
            runs.append((int(region), [word]))
    return [(r, " ".join(words)) for r, words in runs]


def align_split(checkpoint, split="test", max_images=-1, beta=None, data_root=None):
    """MRF assignments of every (image, own sentence) pair of a split.

    Returns a list of dicts: imgid, sentence tokens, assignment (a region per kept
    token), boxes, and the snippets."""
    from neuraltalk.data.batches import encode_sentences
    from neuraltalk.models.brnn import embed_regions, sentence_vectors
    from neuraltalk.data.dataset import load_dataset
    from neuraltalk.data.regions import regions_of_checkpoint
    params, model = checkpoint["params"], checkpoint["model"]
    if params.get("model") != "brnn":
        raise NeuralTalkError("snippets need an alignment model checkpoint (--model brnn)")
    beta = params.get("beta", 1.0) if beta is None else beta
    dataset = load_dataset(params["dataset"], data_root=data_root or params.get("data_root", "data"))
    regions = regions_of_checkpoint(params, dataset)
    wordtoix = checkpoint["wordtoix"]
    images = dataset.split(split)
    if max_images > 0:
        images = images[:max_images]
    check_several_regions(regions, [img["imgid"] for img in images], split)
    out = []
    for img in images:  # one image at a time: each gets its own small products
        feats, counts = regions.rows([img["imgid"]])
        v = embed_regions(model, feats[0, :counts[0]])
        sentences = img["sentences"]
        words, lengths = encode_sentences([s["tokens"] for s in sentences], wordtoix)
        vectors, _ = sentence_vectors(model, words, lengths)
        for k, sent in enumerate(sentences):
            n = lengths[k]
            if n == 0:
                continue
            s = vectors.s[vectors.starts[k]:vectors.starts[k] + n]  # s_j of the sentence's words
            unary = s @ v.T  # psi_U(a_j = t) = v_t . s_j, (words, regions)
            a = viterbi(unary, beta)
            kept = [w for w in sent["tokens"] if w in wordtoix and w != "#START#"]
            item = {"imgid": img["imgid"], "tokens": kept, "assignment": a.tolist(),
                    "snippets": snippets(kept, a),
                    "boxes": regions.boxes[img["imgid"], :counts[0]].tolist(),
                    "filename": img.get("filename"), "filepath": img.get("filepath", "")}
            if "token_region" in sent:
                item["token_region"] = [r for w, r in zip(sent["tokens"], sent["token_region"])
                                        if w in wordtoix and w != "#START#"]
            out.append(item)
    return dataset, out


def check_several_regions(regions, imgids, split):
    """Refuse to align words to regions when no image has more than one (R = 1): every
    word would go to the whole image, and the snippets would be the sentences."""
    if len(imgids) and regions.counts[np.asarray(imgids, dtype=np.int64)].max() > 1:
        return
    if regions.whole_image:
        raise NeuralTalkError(
            "the alignment model was trained on whole images (R = 1: no regions.h5, each "
            "image's feature vector its only region), so there are no regions to align words "
            "to: make regions.h5 (python -m neuraltalk.features DIR --regions multicrop, or "
            "--regions BOXES.json) and train the alignment model on it")
    raise NeuralTalkError("%s: no %s image has a region besides the whole image (R = 1), so "
                          "there are no regions to align words to: give it boxes, or make it "
                          "with python -m neuraltalk.features DIR --regions multicrop"
                          % (regions.path, split))


def snippet_accuracy(items):
    """Fraction of object-describing words (token_region > 0) assigned to their object."""
    hits = total = 0
    for item in items:
        for a, truth in zip(item["assignment"], item.get("token_region", [])):
            if truth > 0:
                total += 1
                hits += a == truth
    return hits / total if total else None


COLOURS = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6",
           "#9a6324", "#800000", "#000075"]
DISPLAY_WIDTH = 320  # pixels: small images are scaled up, large ones down


def region_colour(region):
    """The colour of a region's box and text; grey for region 0, the whole image."""
    return COLOURS[(region - 1) % len(COLOURS)] if region > 0 else "#999"


def boxes_on_image(image_file, boxes, page_folder):
    """HTML of the image with each region's box (regions 1.., not the whole image) drawn
    over it as an absolutely positioned div; a note if the image file is missing."""
    if not image_file or not os.path.exists(image_file):
        return "<span>(no image file)</span>"
    from PIL import Image
    with Image.open(image_file) as im:
        w, h = im.size
    scale = DISPLAY_WIDTH / float(w)
    divs = "".join(
        '<div style="position:absolute;left:%.0fpx;top:%.0fpx;width:%.0fpx;height:%.0fpx;'
        'border:2px solid %s;box-sizing:border-box"></div>'
        % (x0 * scale, y0 * scale, (x1 - x0) * scale, (y1 - y0) * scale, region_colour(i))
        for i, (x0, y0, x1, y1) in enumerate(boxes) if i > 0)
    return ('<div style="position:relative;width:%.0fpx;height:%.0fpx"><img src="%s" '
            'style="width:%.0fpx;height:%.0fpx;image-rendering:pixelated">%s</div>'
            % (w * scale, h * scale,
               html.escape(os.path.relpath(os.path.abspath(image_file), page_folder)),
               w * scale, h * scale, divs))


def image_file(dataset, item):
    if not item.get("filename"):
        return None
    return os.path.join(dataset.folder, item.get("filepath") or "", item["filename"])


def by_image(items):
    """The sentence items of align_split grouped per image, with each region's snippets:
    [{imgid, filename, filepath, boxes, sentences: [{tokens, assignment, snippets,
    (token_region)}], regions: [{region, box, snippets: [text, ...]}]}] in image order."""
    images = {}
    for item in items:
        image = images.get(item["imgid"])
        if image is None:
            image = images[item["imgid"]] = {
                "imgid": item["imgid"], "filename": item["filename"],
                "filepath": item["filepath"], "boxes": item["boxes"], "sentences": [],
                "regions": [{"region": r, "box": box, "snippets": []}
                            for r, box in enumerate(item["boxes"])]}
        image["sentences"].append({k: item[k] for k in ("tokens", "assignment", "snippets",
                                                        "token_region") if k in item})
        for region, text in item["snippets"]:
            image["regions"][region]["snippets"].append(text)
    return list(images.values())


def write_page(path, dataset, images, max_images=100):
    """Each image with its region boxes drawn over it; beside it, each region's snippets
    in its box's colour, then the sentences with every word coloured as its region."""
    folder = os.path.dirname(os.path.abspath(path))
    rows = []
    for image in images[:max_images]:
        picture = boxes_on_image(image_file(dataset, image), image["boxes"], folder)
        regions = "".join(
            '<div style="color:%s"><b>%s</b>: %s</div>' % (
                region_colour(r["region"]),
                "region %d" % r["region"] if r["region"] else "whole image",
                html.escape(" | ".join(r["snippets"])) or "&mdash;")
            for r in image["regions"])
        sentences = "".join("<div>%s</div>" % " ".join(
            '<span style="color:%s">%s</span>' % (region_colour(r), html.escape(t))
            for r, t in sentence["snippets"]) for sentence in image["sentences"])
        rows.append('<tr><td>%s</td><td>%s<hr>%s</td></tr>' % (picture, regions, sentences))
    from neuraltalk.atomic import atomic_write_text
    atomic_write_text(path, "<!DOCTYPE html><html><head><meta charset='utf-8'><title>snippets"
                      "</title></head><body><h1>Region snippets</h1><p>Each region's snippets "
                      "(the MRF's runs of words assigned to it) in the colour of its box; grey: "
                      "the whole image. Below, each sentence coloured word by word.</p>"
                      "<table>%s</table></body></html>" % "\n".join(rows))


def check_beta(beta):
    """--beta weighs the MRF's smoothness term: a finite number >= 0 (None: the
    checkpoint's); NaN would make every assignment equally bad."""
    if beta is not None and not (np.isfinite(beta) and beta >= 0):
        raise NeuralTalkError("--beta %s: the MRF's smoothness must be a finite number >= 0"
                              % beta)
    return beta


def write_snippets(args):
    """The command's work: align the split, write snippets.json and snippets.html."""
    from neuraltalk.atomic import atomic_write_text
    from neuraltalk.train.checkpoint import load_checkpoint
    from neuraltalk.data.dataset import check_max_images
    from neuraltalk.train.runs import checkpoint_file, output_folder
    check_beta(args.beta)
    check_max_images(args.max_images)
    path = checkpoint_file(args.checkpoint_path)
    checkpoint = load_checkpoint(path)
    out = output_folder(args.out or os.path.dirname(os.path.abspath(path)))
    dataset, items = align_split(checkpoint, args.split, args.max_images, args.beta,
                                 args.data_root)
    images = by_image(items)
    atomic_write_text(os.path.join(out, "snippets.json"), json.dumps(images, indent=1))
    write_page(os.path.join(out, "snippets.html"), dataset, images)
    accuracy = snippet_accuracy(items)
    print("%d sentences aligned to their images' regions" % len(items))
    if accuracy is not None:
        print("snippet-region accuracy (words that name an object assigned to its region): "
              "%.3f" % accuracy)
    print("wrote %s and %s" % (os.path.join(out, "snippets.json"),
                               os.path.join(out, "snippets.html")))
    return 0

