// JVM COMPILE STUB — not shipped. androidx.work.Data, only the members dev.outbox.android uses.
package androidx.work

/** Stub of `androidx.work.Data`. */
class Data private constructor(private val values: Map<String, Any?>) {
    /** Real: `Data.getLong(String, long)`. */
    fun getLong(key: String, defaultValue: Long): Long = values[key] as? Long ?: defaultValue

    /** Stub of `Data.Builder`. */
    class Builder {
        private val values = mutableMapOf<String, Any?>()

        /** Real: `Data.Builder.putLong`. */
        fun putLong(key: String, value: Long): Builder = apply { values[key] = value }

        /** Real: `Data.Builder.build`. */
        fun build(): Data = Data(values.toMap())
    }

    companion object {
        /** Real: `Data.EMPTY`. */
        @JvmField
        val EMPTY = Data(emptyMap())
    }
}
