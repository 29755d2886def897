// JVM COMPILE STUB — not shipped. androidx.work.WorkManager, only enqueueUniqueWork,
// enqueueUniquePeriodicWork and cancelUniqueWork; records each call instead of scheduling
// (test hooks).
package androidx.work

import android.content.Context

/** Stub of `androidx.work.WorkManager`: one process-wide recorder. */
class WorkManager private constructor() {
    /** Test hook: one recorded `enqueueUniqueWork` call. */
    data class TestEnqueued(val name: String, val policy: ExistingWorkPolicy, val request: OneTimeWorkRequest)

    /** Test hook: every call so far, oldest first. */
    val testEnqueued: MutableList<TestEnqueued> = java.util.Collections.synchronizedList(mutableListOf())

    /** Test hook: one recorded `enqueueUniquePeriodicWork` call. */
    data class TestPeriodic(val name: String, val policy: ExistingPeriodicWorkPolicy, val request: PeriodicWorkRequest)

    /** Test hook: every `enqueueUniquePeriodicWork` call so far, oldest first. */
    val testPeriodic: MutableList<TestPeriodic> = java.util.Collections.synchronizedList(mutableListOf())

    /** Test hook: every `cancelUniqueWork` call so far (the names), oldest first. */
    val testCancelled: MutableList<String> = java.util.Collections.synchronizedList(mutableListOf())

    /** Real: `WorkManager.enqueueUniquePeriodicWork(String, ExistingPeriodicWorkPolicy, PeriodicWorkRequest)`. */
    fun enqueueUniquePeriodicWork(uniqueWorkName: String, policy: ExistingPeriodicWorkPolicy, work: PeriodicWorkRequest) {
        testPeriodic += TestPeriodic(uniqueWorkName, policy, work)
    }

    /** Real: `WorkManager.cancelUniqueWork(String)` (returns an `Operation`; unused here). */
    fun cancelUniqueWork(uniqueWorkName: String) {
        testCancelled += uniqueWorkName
    }

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
