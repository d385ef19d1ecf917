package dev.edgesdk.demo

import android.content.Context
import com.google.ai.edge.litert.CompiledModel
import com.google.ai.edge.litert.TensorBuffer
import dev.edgesdk.core.Classification
import dev.edgesdk.core.DType
import dev.edgesdk.core.DigitFramer
import dev.edgesdk.core.EdgeCoreException
import dev.edgesdk.core.ImagePreprocessor
import dev.edgesdk.core.Manifest
import dev.edgesdk.core.OutputDecoder

/**
 * The mnist CNN from `edge-sdk convert`, run with LiteRT's CompiledModel on the CPU.
 *
 * Everything model-specific (input size, scale and zero point, labels) comes from the manifest
 * through the plain-Java core, which CI checks byte for byte against edge-sdk's Python runtime.
 * Not thread-safe: call [classify] from one thread.
 */
class DigitClassifier private constructor(
    val manifest: Manifest,
    private val model: CompiledModel,
    private val inputs: List<TensorBuffer>,
    private val outputs: List<TensorBuffer>,
    private val preprocessor: ImagePreprocessor,
    private val decoder: OutputDecoder,
) : AutoCloseable {

    /** The top classes and how long the work took, in microseconds. */
    data class Result(
        val top: List<Classification>,
        /** `CompiledModel.run` alone. */
        val inferenceMicros: Long,
        /** Framing, quantizing, running, dequantizing and ranking. */
        val totalMicros: Long,
    )

    /** Classify a drawing given as [side] x [side] ARGB pixels. */
    fun classify(argb: IntArray, side: Int, k: Int = 3): Result {
        val start = System.nanoTime()
        val framed = DigitFramer.frame(argb, side, side)
        when (preprocessor.input().dtype()) {
            DType.INT8 -> inputs[0].writeInt8(preprocessor.toInputBytes(framed, DigitFramer.SIZE, DigitFramer.SIZE))
            DType.FLOAT32 -> inputs[0].writeFloat(preprocessor.toFloat(framed, DigitFramer.SIZE, DigitFramer.SIZE))
            else -> throw EdgeCoreException("this demo feeds int8 or float32 inputs; the model takes ${preprocessor.input()}")
        }
        val runStart = System.nanoTime()
        model.run(inputs, outputs)
        val runEnd = System.nanoTime()
        val top = when (decoder.output().dtype()) {
            DType.INT8 -> decoder.topK(outputs[0].readInt8(), k)
            DType.FLOAT32 -> decoder.rank(outputs[0].readFloat(), k)
            else -> throw EdgeCoreException("this demo reads int8 or float32 outputs; the model gives ${decoder.output()}")
        }
        val end = System.nanoTime()
        return Result(top, (runEnd - runStart) / 1000, (end - start) / 1000)
    }

    override fun close() {
        inputs.forEach { it.close() }
        outputs.forEach { it.close() }
        model.close()
    }

    companion object {
        /**
         * Load `model.tflite` and `model.json` from the app's assets. The model's bytes are checked
         * against the manifest's size and sha256 before LiteRT sees them: LiteRT runs a model with a
         * corrupted weight silently, and some corrupted headers crash its loader.
         * Throws [dev.edgesdk.core.EdgeCoreException] for a bad manifest, model or image size, and
         * [com.google.ai.edge.litert.LiteRtException] (with LiteRT's status) when LiteRT refuses it.
         */
        fun create(context: Context, modelAsset: String = "model.tflite", manifestAsset: String = "model.json"): DigitClassifier {
            val manifest = Manifest.parse(context.assets.open(manifestAsset).use { it.readBytes() })
            val modelBytes = context.assets.open(modelAsset).use { it.readBytes() }
            manifest.verifyModel(modelBytes)
            val preprocessor = ImagePreprocessor(manifest)
            val pre = preprocessor.preprocessing()
            if (pre.height() != DigitFramer.SIZE || pre.width() != DigitFramer.SIZE || pre.channels() != 1) {
                throw EdgeCoreException(
                    "this demo draws 28x28 grayscale digits; the manifest's model takes " +
                        "${pre.height()}x${pre.width()}x${pre.channels()}",
                )
            }
            // The APK's assets are read-only, so LiteRT reads the same bytes that were just verified.
            val model = CompiledModel.create(context.assets, modelAsset, CompiledModel.Options.CPU)
            try {
                return DigitClassifier(
                    manifest, model, model.createInputBuffers(), model.createOutputBuffers(),
                    preprocessor, OutputDecoder(manifest),
                )
            } catch (e: Exception) {
                model.close()
                throw e
            }
        }
    }
}
