"""The building blocks every model is made of, cs231n style.

Each layer is a pair of pure functions: `x_forward(...) -> (out, cache)` and
`x_backward(dout, cache) -> gradients`, with shapes in the docstring and a named cache
holding exactly what the backward pass needs. No layer reads a model dict: weights come
in as arguments, so a model module decides what its parameters are called (NeuralTalk's
`We`, `Ws`, `WLSTM`, `Wd`, the paper's `Wm`, `Wf`, `Wb`) and how the layers connect.

Sequences are *packed* (see `packed.py`): the sentences of a batch sorted by decreasing
length and laid out step by step, with no padding, so a time-distributed operation is one
operation over all rows and a recurrence touches each step's rows once.

    packed      the layout of a batch of sequences, and of a teacher-forced caption batch
    embedding   row lookup W[idx] and its scatter-add backward
    affine      x @ w + b over any rows (packed rows included)
    softmax     softmax cross-entropy over rows, NeuralTalk's 1e-20, per-row weights
    lstm        an LSTM over a packed sequence (input projection given), and one step
    rnn         a ReLU/tanh RNN over a packed sequence, forward or reversed, and one step
    dropout     inverted dropout with an explicit mask
"""
