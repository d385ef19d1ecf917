"""Import TensorFlow and friends in the one order that works.

tfmot only accepts tf_keras models and sets ``TF_USE_LEGACY_KERAS=1`` when
imported; doing that before TensorFlow is first imported makes ``tf.keras`` and
``tf.lite.TFLiteConverter.from_keras_model`` agree with tf_keras everywhere in
the process. TensorFlow's C++ log chatter is turned down unless the user set it.
"""
from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow_model_optimization as tfmot  # noqa: E402  (must precede tensorflow)
import tensorflow as tf  # noqa: E402
import tf_keras  # noqa: E402

tf.get_logger().setLevel("ERROR")

__all__ = ["tf", "tf_keras", "tfmot"]
