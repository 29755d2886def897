package dev.outbox.android.tests

import android.net.Network
import androidx.lifecycle.Lifecycle
import androidx.lifecycle.ProcessLifecycleOwner
import androidx.work.BackoffPolicy
import androidx.work.Data
import androidx.work.ExistingWorkPolicy
import androidx.work.ListenableWorker
import androidx.work.NetworkType
import androidx.work.WorkerParameters
import dev.outbox.android.BackgroundDrainPolicy
import dev.outbox.android.BackgroundDrainScheduler
import dev.outbox.android.DrainVerdict
import dev.outbox.android.OutboxAndroid
import dev.outbox.android.OutboxDrainWorker
import kotlin.test.Test
import kotlin.test.assertEquals
import kotlin.test.assertIs
import kotlin.test.assertNull
import kotlin.test.assertTrue
import kotlinx.coroutines.delay
import kotlinx.coroutines.runBlocking
import uniffi.outbox_ffi.DrainReport

/** The WorkManager worker and its scheduling, against a real engine. */
class BackgroundDrainTest {
    private fun worker(context: TestContext, budgetMs: Long) = OutboxDrainWorker(
        context,
        WorkerParameters(Data.Builder().putLong(OutboxDrainWorker.KEY_BUDGET_MS, budgetMs).build()),
    )

    @Test
    fun verdictIsDoneOnlyWhenNothingRemains() {
        fun report(remaining: ULong, completed: Boolean) = DrainReport(0uL, 0uL, 0uL, remaining, completed)
        assertEquals(DrainVerdict.DONE, BackgroundDrainPolicy.verdictFor(report(0uL, true)))
        assertEquals(DrainVerdict.RUN_AGAIN, BackgroundDrainPolicy.verdictFor(report(3uL, true)))
        assertEquals(DrainVerdict.RUN_AGAIN, BackgroundDrainPolicy.verdictFor(report(1uL, false)))
    }

    @Test
    fun enqueueSchedulesOneUniqueNetworkConstrainedWork() = runBlocking {
        withOutboxAndroid { android, ctx ->
            delay(200)
            assertTrue(enqueuedWork(ctx).isEmpty(), "nothing pending at start: nothing scheduled")
            android.enqueue(note(1))
            eventually(message = "work enqueued") { enqueuedWork(ctx).size == 1 }
            val work = enqueuedWork(ctx).single()
            assertEquals(BackgroundDrainScheduler.UNIQUE_WORK_NAME, work.name)
            assertEquals(ExistingWorkPolicy.KEEP, work.policy)
            assertEquals(OutboxDrainWorker::class.java, work.request.testWorkerClass)
            assertEquals(NetworkType.CONNECTED, work.request.testConstraints?.requiredNetworkType)
            assertEquals(BackoffPolicy.EXPONENTIAL to 30_000L, work.request.testBackoff)
            assertEquals(
                BackgroundDrainScheduler.DEFAULT_BUDGET_MS,
                work.request.testInputData.getLong(OutboxDrainWorker.KEY_BUDGET_MS, -1),
            )
            repeat(5) { android.enqueue(note(2 + it)) }
            delay(200)
            assertEquals(1, enqueuedWork(ctx).size, "requests are deduplicated while one is outstanding")
        }
    }

    @Test
    fun pendingCommandsFromAnEarlierSessionAreScheduledAtStartAndOnBackground() = runBlocking {
        val ctx = TestContext()
        // Session 1, offline: the command stays pending in the database.
        withOutboxAndroid(ctx, online = false) { android, _ -> android.enqueue(note(1)) }
        // Session 2 (a new process; the harness clears the recorded work first): the start-up
        // status check schedules the drain. The process starts in the background, whose first
        // lifecycle report may ask as well, so "at least once".
        withOutboxAndroid(ctx, online = false) { android, _ ->
            eventually(message = "work enqueued at start") { enqueuedWork(ctx).isNotEmpty() }
            assertEquals(1uL, android.status().pending)
            val atStart = enqueuedWork(ctx).size
            // Going to the background asks again (KEEP makes it a no-op if still queued).
            ProcessLifecycleOwner.get().testMoveTo(Lifecycle.State.STARTED)
            ProcessLifecycleOwner.get().testMoveTo(Lifecycle.State.CREATED)
            eventually(message = "work enqueued on background") { enqueuedWork(ctx).size > atStart }
            assertTrue(enqueuedWork(ctx).all { it.policy == ExistingWorkPolicy.KEEP })
        }
    }

    @Test
    fun workerWithoutAServerRetriesWithoutBurningTheBudget() = runBlocking {
        withOutboxAndroid(serverUrl = null) { android, ctx ->
            android.enqueue(note(1))
            val started = System.nanoTime()
            val result = worker(ctx, budgetMs = 5_000).doWork()
            val elapsedMs = (System.nanoTime() - started) / 1_000_000
            assertIs<ListenableWorker.Result.Retry>(result, "a pending command is left: run again later")
            assertTrue(elapsedMs < 2_000, "nothing can be sent: returns at once, took $elapsedMs ms")
            assertEquals(1uL, android.status().pending)
        }
    }

    @Test
    fun workerAgainstAnUnreachableServerRetries() = runBlocking {
        withOutboxAndroid(serverUrl = "http://127.0.0.1:${closedPort()}") { android, ctx ->
            android.enqueue(note(1))
            val result = worker(ctx, budgetMs = 10_000).doWork()
            assertIs<ListenableWorker.Result.Retry>(result)
            val status = android.status()
            assertEquals(1uL, status.pending + status.inFlight)
        }
    }

    @Test
    fun workerStopsAtItsBudgetWhenTheServerHangs() = runBlocking {
        SilentServer().use { server ->
            withOutboxAndroid(serverUrl = server.url, configure = { it.copy(attemptTimeoutMs = 20_000uL) }) { android, ctx ->
                android.enqueue(note(1))
                val started = System.nanoTime()
                val result = worker(ctx, budgetMs = 400).doWork()
                val elapsedMs = (System.nanoTime() - started) / 1_000_000
                assertIs<ListenableWorker.Result.Retry>(result)
                assertTrue(elapsedMs in 350..2_500, "drain bounded by its 400 ms budget, took $elapsedMs ms")
            }
        }
    }

    @Test
    fun workerDrainsAQueuedCommandAndSucceeds() = runBlocking {
        ReferenceServer().use { server ->
            withOutboxAndroid(online = false, serverUrl = server.url) { android, ctx ->
                android.enqueue(note(1))
                eventually(message = "work enqueued") { enqueuedWork(ctx).size == 1 }
                // Offline: nothing can be sent, the OS is asked to run the work again.
                assertIs<ListenableWorker.Result.Retry>(worker(ctx, budgetMs = 5_000).doWork())

                // The network comes back (validated), then WorkManager runs the work.
                val wifi = Network()
                val cb = ctx.connectivity.testCallbacks.single()
                cb.onAvailable(wifi)
                cb.onCapabilitiesChanged(wifi, VALIDATED)
                val result = worker(ctx, budgetMs = 10_000).doWork()
                assertIs<ListenableWorker.Result.Success>(result)
                assertTrue("o-1" in server.get("/v1/changes"), "the server has the order")
                val status = android.status()
                assertEquals(0uL, status.pending + status.inFlight)
                assertEquals(1uL, status.succeeded)

                // That request was fulfilled: the next command asks the OS again.
                android.enqueue(note(2))
                eventually(message = "work enqueued again") { enqueuedWork(ctx).size == 2 }
            }
        }
    }

    @Test
    fun workerWithoutAnInstanceFails(): Unit = runBlocking {
        assertNull(OutboxAndroid.instanceOrNull())
        assertIs<ListenableWorker.Result.Failure>(worker(TestContext(), budgetMs = 1_000).doWork())
    }
}
