"""`shapes`: the embedded demo dataset, rendered from a seed in a few seconds.

Each 64 x 64 image holds one to three coloured shapes (6 colours, 4 shapes, 2 sizes) on
a noisy grey background, with five different captions from a varied grammar (colour,
shape, size, count, relative position, synonyms). The folder is a complete dataset in
Karpathy's format plus what the alignment model needs:

- `dataset.json`: images with `filename`, `filepath` ("images"), `imgid`, `split`,
  `sentids`, `sentences` ({tokens, raw, imgid, sentid, token_region}) and `objects`
  ({shape, color, size, box [x0, y0, x1, y1]}). `token_region[j]` is the region that
  token j describes (1 + object index; region 0 is the whole image), -1 if it describes
  no single object.
- `images/*.png`, `vgg_feats.npy` (N x D float32, row imgid), `features.json`.
- `regions.h5`: `feats` (N, R, D) float32, `boxes` (N, R, 4) int32, `counts` (N,) int32;
  region 0 the whole image, then one region per object.
- `.neuraltalk-shapes`: the generator's mark. The demo is only ever generated into a
  folder that is missing, empty or marked so, and nothing it did not write is deleted.

    scenes      the scenes and their captions (renderer and captioner)
    extractor   its pure-NumPy feature extractor, the `shapes-extractor` CNN
    checker     whether a caption names only colours and shapes that are there
    dataset     ensure_shapes: render the dataset into a folder
"""
