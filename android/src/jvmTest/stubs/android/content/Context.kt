// JVM COMPILE STUB — not shipped. Mirrors only the members of android.content.Context that
// dev.outbox.android uses, so the adapters compile and run on a plain JVM in the kotlin suite.
package android.content

import java.io.File

/** Stub of `android.content.Context`: tests subclass it. */
abstract class Context {
    /** Real: `Context.getApplicationContext()`. */
    abstract val applicationContext: Context

    /** Real: `Context.getNoBackupFilesDir()` (API 21). */
    abstract val noBackupFilesDir: File

    /** Real: `Context.getSystemService(Class<T>)` (API 23). */
    abstract fun <T> getSystemService(serviceClass: Class<T>): T?
}
