// JVM COMPILE STUB — not shipped. android.net.Network as an opaque handle (identity equality).
package android.net

/** Stub of `android.net.Network`. */
class Network
