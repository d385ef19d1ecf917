"""The built-in dataset and zoo model names, in one light list (no imports): training uses them, and the CLI's
help and every error message that lists them read them from here."""

from __future__ import annotations

# training.datasets.load(name): the built-in datasets (fashion-mnist also as fashion-mnist:N, N training images)
DATASETS = ("digits", "mnist", "adult", "fashion-mnist")
IMAGE_DATASETS = ("digits", "mnist", "fashion-mnist")
# training.zoo.build(name, dataset): the zoo models, trained on the fly by `edge-sdk convert NAME --dataset D`
ZOO_MODELS = ("cnn", "cnn-student", "wide-deep")
IMAGE_MODELS = ("cnn", "cnn-student")

DATASETS_TEXT = ", ".join(DATASETS)  # "digits, mnist, adult, fashion-mnist": what messages list
ZOO_MODELS_TEXT = ", ".join(ZOO_MODELS)
