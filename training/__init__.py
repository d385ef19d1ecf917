"""edge-sdk training: real datasets, tf.data pipelines, the model zoo, training and export.

Modules: ``names`` (the built-in dataset and zoo model names, no imports), ``datasets`` (the built-ins,
CSV/parquet, TFRecord dirs), ``features`` (feature specs), ``tfrecord``, ``zoo`` (the zoo models),
``train`` (``fit``), ``saving`` (SavedModel, .keras, manifests of a trained model),
``distributed`` (tf.distribute from TF_CONFIG), ``embeddings`` (projector).
Importing this package does not import TensorFlow; the modules that train do.
See docs/training.md.
"""
