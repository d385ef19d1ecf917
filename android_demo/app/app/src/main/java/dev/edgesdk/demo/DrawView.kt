package dev.edgesdk.demo

import android.content.Context
import android.graphics.Bitmap
import android.graphics.Canvas
import android.graphics.Color
import android.graphics.Paint
import android.graphics.Path
import android.util.AttributeSet
import android.view.MotionEvent
import android.view.View

/** A square-ish black canvas the user draws white strokes on, like an MNIST digit. */
class DrawView(context: Context, attrs: AttributeSet?) : View(context, attrs) {
    /** Called on the UI thread each time a stroke ends. */
    var onStrokeEnd: (() -> Unit)? = null

    private var bitmap: Bitmap? = null
    private var bitmapCanvas: Canvas? = null
    private val path = Path()
    private var lastX = 0f
    private var lastY = 0f
    private val paint = Paint().apply {
        color = Color.WHITE
        isAntiAlias = true
        style = Paint.Style.STROKE
        strokeCap = Paint.Cap.ROUND
        strokeJoin = Paint.Join.ROUND
    }

    override fun onSizeChanged(w: Int, h: Int, oldw: Int, oldh: Int) {
        super.onSizeChanged(w, h, oldw, oldh)
        if (w == 0 || h == 0) return
        bitmap = Bitmap.createBitmap(w, h, Bitmap.Config.ARGB_8888).also {
            bitmapCanvas = Canvas(it)
            it.eraseColor(Color.BLACK)
        }
        // MNIST strokes are about 2-3 px wide on a 28 px image; keep that proportion.
        paint.strokeWidth = minOf(w, h) / 12f
    }

    override fun onDraw(canvas: Canvas) {
        bitmap?.let { canvas.drawBitmap(it, 0f, 0f, null) }
        canvas.drawPath(path, paint)
    }

    override fun onTouchEvent(event: MotionEvent): Boolean {
        val x = event.x
        val y = event.y
        when (event.actionMasked) {
            MotionEvent.ACTION_DOWN -> {
                path.moveTo(x, y)
                lastX = x
                lastY = y
            }
            MotionEvent.ACTION_MOVE -> {
                path.quadTo(lastX, lastY, (x + lastX) / 2, (y + lastY) / 2)
                lastX = x
                lastY = y
            }
            MotionEvent.ACTION_UP, MotionEvent.ACTION_CANCEL -> {
                path.lineTo(x, y)
                bitmapCanvas?.drawPath(path, paint)
                path.reset()
                onStrokeEnd?.invoke()
            }
            else -> return false
        }
        invalidate()
        return true
    }

    /** Erase the drawing. */
    fun clear() {
        bitmap?.eraseColor(Color.BLACK)
        path.reset()
        invalidate()
    }

    /**
     * The drawing scaled down to [side] x [side] ARGB pixels (a filtered scale keeps thin strokes),
     * or null before the view is laid out.
     */
    fun pixels(side: Int): IntArray? {
        val source = bitmap ?: return null
        val small = Bitmap.createScaledBitmap(source, side, side, true)
        val out = IntArray(side * side)
        small.getPixels(out, 0, side, 0, 0, side, side)
        if (small !== source) small.recycle()
        return out
    }
}
