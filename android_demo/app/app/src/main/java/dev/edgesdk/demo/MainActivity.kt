package dev.edgesdk.demo

import android.os.Bundle
import android.widget.Button
import android.widget.TextView
import androidx.appcompat.app.AppCompatActivity
import com.google.ai.edge.litert.LiteRtException
import dev.edgesdk.core.EdgeCoreException
import java.util.Locale
import java.util.concurrent.ExecutorService
import java.util.concurrent.Executors

/** Draw a digit; after each stroke the model classifies it and the latency of that inference is shown. */
class MainActivity : AppCompatActivity() {
    private lateinit var drawView: DrawView
    private lateinit var result: TextView
    private lateinit var latency: TextView
    // One thread owns the classifier: LiteRT buffers are not shared across threads.
    private val worker: ExecutorService = Executors.newSingleThreadExecutor()
    private var classifier: DigitClassifier? = null
    private val recentMicros = ArrayDeque<Long>()

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        setContentView(R.layout.activity_main)
        drawView = findViewById(R.id.draw_view)
        result = findViewById(R.id.result)
        latency = findViewById(R.id.latency)
        findViewById<Button>(R.id.clear).setOnClickListener {
            drawView.clear()
            result.text = getString(R.string.hint)
            latency.text = ""
        }
        drawView.onStrokeEnd = { classifyDrawing() }

        worker.execute {
            val message = try {
                classifier = DigitClassifier.create(this)
                val m = classifier!!.manifest
                "model ${m.modelFile()} (${m.kind() ?: "?"}, ${m.sizeBytes()} bytes) ready\n${getString(R.string.hint)}"
            } catch (e: EdgeCoreException) {
                "cannot use the model: ${e.message}"
            } catch (e: LiteRtException) {
                "LiteRT could not load the model: ${e.message}"
            } catch (e: java.io.IOException) {
                "model.tflite and model.json must be in the app's assets: ${e.message}"
            }
            runOnUiThread { result.text = message }
        }
    }

    private fun classifyDrawing() {
        val pixels = drawView.pixels(CANVAS_SIDE) ?: return
        worker.execute {
            val model = classifier ?: return@execute
            val text = try {
                val r = model.classify(pixels, CANVAS_SIDE)
                recentMicros.addLast(r.inferenceMicros)
                if (recentMicros.size > 20) recentMicros.removeFirst()
                val median = recentMicros.sorted()[recentMicros.size / 2]
                val lines = r.top.joinToString("\n") { c ->
                    String.format(Locale.ROOT, "%-3s %5.1f%%", c.label(), 100f * c.score())
                }
                lines to String.format(
                    Locale.ROOT, "inference %d µs · with pre/post-processing %d µs · median of last %d: %d µs",
                    r.inferenceMicros, r.totalMicros, recentMicros.size, median,
                )
            } catch (e: EdgeCoreException) {
                "error: ${e.message}" to ""
            } catch (e: LiteRtException) {
                "LiteRT error: ${e.message}" to ""
            }
            runOnUiThread {
                result.text = text.first
                latency.text = text.second
            }
        }
    }

    override fun onDestroy() {
        worker.execute { classifier?.close() }
        worker.shutdown()
        super.onDestroy()
    }

    companion object {
        /** The drawing is scaled to this many pixels a side before framing (enough detail, little work). */
        private const val CANVAS_SIDE = 280
    }
}
