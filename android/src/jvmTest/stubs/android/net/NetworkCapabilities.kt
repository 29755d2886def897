// JVM COMPILE STUB — not shipped. android.net.NetworkCapabilities, the members dev.outbox.android
// uses, plus a test-only constructor taking the capability set.
package android.net

/** Stub of `android.net.NetworkCapabilities`. */
class NetworkCapabilities(vararg capabilities: Int) {
    private val caps = capabilities.toSet()

    /** Real: `NetworkCapabilities.hasCapability(int)`. */
    fun hasCapability(capability: Int): Boolean = capability in caps

    companion object {
        /** Same value as the SDK constant. */
        const val NET_CAPABILITY_INTERNET = 12

        /** Same value as the SDK constant. */
        const val NET_CAPABILITY_VALIDATED = 16
    }
}
