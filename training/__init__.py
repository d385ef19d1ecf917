"""edge-sdk training: real datasets, tf.data pipelines, the model zoo, training and export.

Modules: ``datasets`` (digits, mnist, adult, fashion-mnist, CSV/parquet, TFRecord dirs),
``features`` (feature specs), ``tfrecord``, ``zoo`` (cnn, cnn-student, wide-deep),
``train`` (``fit``), ``export`` (SavedModel, .keras, manifests),
``distributed`` (tf.distribute from TF_CONFIG), ``embeddings`` (projector).
Importing this package does not import TensorFlow; the modules that train do.
See docs/training.md.
"""
