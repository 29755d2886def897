// JVM COMPILE STUB — not shipped. android.util.Log, only the overload dev.outbox.android uses.
package android.util

/** Stub of `android.util.Log`: prints to stderr. */
object Log {
    /** Real: `Log.w(String, String, Throwable)`. */
    @JvmStatic
    fun w(tag: String, msg: String, tr: Throwable): Int {
        System.err.println("W/$tag: $msg: $tr")
        return 0
    }
}
