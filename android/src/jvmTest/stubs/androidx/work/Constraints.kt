// JVM COMPILE STUB — not shipped. androidx.work.Constraints / NetworkType, only what is used.
package androidx.work

/** Stub of `androidx.work.NetworkType`. */
enum class NetworkType { NOT_REQUIRED, CONNECTED, UNMETERED, NOT_ROAMING, METERED, TEMPORARILY_UNMETERED }

/** Stub of `androidx.work.Constraints`. */
class Constraints private constructor(
    /** Real: `Constraints.getRequiredNetworkType()`. */
    val requiredNetworkType: NetworkType,
    /** Real: `Constraints.requiresCharging()`. */
    val requiresCharging: Boolean,
) {
    /** Stub of `Constraints.Builder`. */
    class Builder {
        private var networkType = NetworkType.NOT_REQUIRED
        private var charging = false

        /** Real: `Constraints.Builder.setRequiredNetworkType`. */
        fun setRequiredNetworkType(networkType: NetworkType): Builder = apply { this.networkType = networkType }

        /** Real: `Constraints.Builder.setRequiresCharging`. */
        fun setRequiresCharging(requiresCharging: Boolean): Builder = apply { charging = requiresCharging }

        /** Real: `Constraints.Builder.build`. */
        fun build(): Constraints = Constraints(networkType, charging)
    }
}
