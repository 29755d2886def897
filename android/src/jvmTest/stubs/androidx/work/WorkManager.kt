// JVM COMPILE STUB — not shipped. androidx.work.WorkManager, only enqueueUniqueWork; records
// each call instead of scheduling (test hooks).
package androidx.work

import android.content.Context

/** Stub of `androidx.work.WorkManager`: one process-wide recorder. */
class WorkManager private constructor() {
    /** Test hook: one recorded `enqueueUniqueWork` call. */
    data class TestEnqueued(val name: String, val policy: ExistingWorkPolicy, val request: OneTimeWorkRequest)

    /** Test hook: every call so far, oldest first. */
    val testEnqueued: MutableList<TestEnqueued> = java.util.Collections.synchronizedList(mutableListOf())

    /** Real: `WorkManager.enqueueUniqueWork(String, ExistingWorkPolicy, OneTimeWorkRequest)`. */
    fun enqueueUniqueWork(uniqueWorkName: String, existingWorkPolicy: ExistingWorkPolicy, work: OneTimeWorkRequest) {
        testEnqueued += TestEnqueued(uniqueWorkName, existingWorkPolicy, work)
    }

    companion object {
        private val instance = WorkManager()

        /** Real: `WorkManager.getInstance(Context)`. */
        @JvmStatic
        fun getInstance(context: Context): WorkManager = instance
    }
}
