"""Every kind of model, and the one registry the rest of the project reads.

Caption generators (`--model generator --generator NAME`) and alignment models
(`--model NAME`) are modules that provide:

    NAME            the registry name (the value of --generator or --model)
    PAPER           one line: what the model reproduces
    ARCHITECTURE    flags that fix the parameters' shapes or meaning: stored in every
                    checkpoint, and taken from it (not the command line) when resuming
    DEFAULTS        defaults of shared flags for this model, e.g. {"solver": "adam"}
    REGULARIZED     the weight matrices under L2 (regc/2 * sum W^2 / batch size)
    NEEDS_REGIONS   True if its batches carry regions (B, R, D), not only feats (B, D)
    PRESETS         (optional) {name: {flag: value}}: `--preset name` makes these the
                    defaults (flags given on the command line still win)
    add_arguments(group)            its own flags and their defaults (argparse group)
    check_params(params)            NeuralTalkError for flags that cannot make this model
    init(params, feature_width, vocab_size, rng, dtype) -> model dict of arrays
    loss(model, batch, params, rng=None, masks=None, compute_grads=True)
        -> (cost dict with 'total_cost', 'loss_cost', 'reg_cost', grads dict or None)
        rng draws dropout (None: none); masks fixes it (gradient checks).

Caption generators' loss also takes row_weights=None: (N,) weights of the scored words'
log-likelihoods instead of 1, one per row of neuraltalk.layers.packed.layout(batch.words,
batch.lengths), in its order (the targets w_1..w_n, END of every sentence); pass them to
captioning.decoder_loss. Self-critical training (train/scst.py) weights the words of each
sampled caption by its advantage, and gives 0 to the END of a caption cut at max length.

Caption generators also provide, for decoding (greedy and beam search):

    start(model, feats, params) -> state     dict of arrays, axis 0 = the batch
    step(model, state, prev_words, params) -> (logits (B, V), state)

and share the image encoder, word vectors, decoder, cost and validation of
`captioning.py`. Alignment models provide `make_task` (their batches and validation)
and `score_matrix` (retrieval). Adding a model is one module here plus its line below.
"""
from neuraltalk.errors import NeuralTalkError
from neuraltalk.models import attention, brnn, lrcn, lstm, mrnn, rnn

GENERATORS = {m.NAME: m for m in (lstm, rnn, mrnn, lrcn, attention)}
ALIGNMENT_MODELS = {m.NAME: m for m in (brnn,)}


def model_kinds():
    """The values of --model: 'generator' (any caption generator) or an alignment model."""
    return ["generator"] + sorted(ALIGNMENT_MODELS)


def is_generator(params):
    return params.get("model", "generator") == "generator"


def module_of(params):
    """The module of the model `params` describe (a checkpoint's params or the flags)."""
    if is_generator(params):
        name = params.get("generator", "lstm")
        if name not in GENERATORS:
            raise NeuralTalkError("unknown --generator %r: use one of %s"
                                  % (name, ", ".join(sorted(GENERATORS))))
        return GENERATORS[name]
    name = params["model"]
    if name not in ALIGNMENT_MODELS:
        raise NeuralTalkError("unknown --model %r: use one of %s"
                              % (name, ", ".join(model_kinds())))
    return ALIGNMENT_MODELS[name]


def all_modules():
    return list(GENERATORS.values()) + list(ALIGNMENT_MODELS.values())


def presets():
    """{preset name: [(model label, module)]} of every module's PRESETS."""
    found = {}
    for label, m in [("--generator " + n, m) for n, m in sorted(GENERATORS.items())] + \
            [("--model " + n, m) for n, m in sorted(ALIGNMENT_MODELS.items())]:
        for name in getattr(m, "PRESETS", {}):
            found.setdefault(name, []).append((label, m))
    return found


def preset_values(params):
    """The flag values `--preset` gives the model `params` describe ({} without --preset);
    NeuralTalkError if that model has no such preset."""
    name = params.get("preset")
    if not name:
        return {}
    module = module_of(params)
    table = getattr(module, "PRESETS", {})
    if name not in table:
        owners = ", ".join(label for label, _ in presets().get(name, []))
        raise NeuralTalkError("--preset %s is not a preset of %s (it is one of %s)"
                              % (name, module_label(params), owners or "no model"))
    return dict(table[name])


def module_label(params):
    if is_generator(params):
        return "--model generator --generator %s" % params.get("generator", "lstm")
    return "--model %s" % params["model"]


def architecture_flags(params):
    """The flags that fix the architecture of the model `params` describe."""
    shared = ("model", "generator") if is_generator(params) else ("model",)
    return shared + tuple(module_of(params).ARCHITECTURE)


def make_task(params, dataset, rng, vocab=None):
    """The training Task (neuraltalk/models/task.py) of the model `params` describe."""
    module = module_of(params)
    if is_generator(params):
        from neuraltalk.models import captioning
        return captioning.make_task(module, params, dataset, rng, vocab)
    return module.make_task(params, dataset, rng, vocab)
