package dev.outbox.android.tests

import android.net.Network
import androidx.work.Data
import androidx.work.ExistingPeriodicWorkPolicy
import androidx.work.ListenableWorker
import androidx.work.NetworkType
import androidx.work.WorkManager
import androidx.work.WorkerParameters
import dev.outbox.android.BackgroundDrainScheduler
import dev.outbox.android.BackgroundDrainTarget
import dev.outbox.android.OutboxAndroid
import dev.outbox.android.OutboxBackground
import dev.outbox.android.OutboxDrainWorker
import java.io.File
import kotlin.test.AfterTest
import kotlin.test.Test
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertFalse
import kotlin.test.assertIs
import kotlin.test.assertNull
import kotlin.test.assertTrue
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import uniffi.outbox_ffi.CommandState
import uniffi.outbox_ffi.Settlement

/**
 * The background drain of an app whose foreground engine is not an `OutboxAndroid` (React
 * Native: JavaScript opens the engine): the "app" engine is a real engine opened on the same
 * file, and the "worker" path is `OutboxDrainWorker.doWork()` with the target stored by
 * `OutboxBackground.enable`, against the real reference server on 127.0.0.1.
 */
class StandaloneBackgroundDrainTest {
    private fun worker(context: TestContext, budgetMs: Long = 10_000) = OutboxDrainWorker(
        context,
        WorkerParameters(Data.Builder().putLong(OutboxDrainWorker.KEY_BUDGET_MS, budgetMs).build()),
    )

    /** A context with a validated network (WorkManager runs the work on a connected network). */
    private fun onlineContext() = TestContext().also {
        val wifi = Network()
        it.connectivity.testActiveNetwork = wifi
        it.connectivity.testCapabilities[wifi] = VALIDATED
    }

    private fun targetIn(ctx: TestContext, serverUrl: String?) =
        BackgroundDrainTarget(File(ctx.noBackupFilesDir, "outbox.db").absolutePath, "alice", "ws-1", serverUrl)

    @AfterTest
    fun forgetTokens() = OutboxBackground.setTokenProvider(null)

    @Test
    fun theWorkerDrainsWhatTheAppEnqueuedWhileTheAppEngineIsStillOpen() = runBlocking {
        ReferenceServer().use { server ->
            val ctx = onlineContext()
            // The app's engine, offline (the app went to the background before it could send).
            val app = openOutbox(ctx.noBackupFilesDir, server.url, startOnline = false)
            val id = app.enqueue(note(1))
            OutboxBackground.setTokenProvider(FixedToken)
            OutboxBackground.enable(ctx, targetIn(ctx, server.url), minIntervalMinutes = 15)
            assertNull(OutboxAndroid.instanceOrNull(), "no OutboxAndroid: the worker opens the stored target")

            val result = worker(ctx).doWork()

            assertIs<ListenableWorker.Result.Success>(result)
            assertTrue("o-1" in server.get("/v1/changes"), "the server has the order")
            assertEquals(CommandState.SUCCEEDED, app.command(id).state, "the app's engine sees it settled")
            // The worker drained the app's own engine and left it running.
            val next = app.enqueue(note(2))
            assertIs<Settlement.Succeeded>(withTimeout(10_000) { app.waitFor(next) })
            app.shutdown()
        }
    }

    @Test
    fun theWorkerDrainsWhatTheAppEnqueuedAfterTheAppEngineWasClosed() = runBlocking {
        ReferenceServer().use { server ->
            val ctx = onlineContext()
            val app = openOutbox(ctx.noBackupFilesDir, server.url, startOnline = false)
            val id = app.enqueue(note(1))
            app.shutdown()
            app.close()
            OutboxBackground.setTokenProvider(FixedToken)
            OutboxBackground.enable(ctx, targetIn(ctx, server.url), minIntervalMinutes = 15)

            val result = worker(ctx).doWork()

            assertIs<ListenableWorker.Result.Success>(result)
            assertTrue("o-1" in server.get("/v1/changes"), "the server has the order")
            val again = openOutbox(ctx.noBackupFilesDir, startOnline = false)
            assertEquals(CommandState.SUCCEEDED, again.command(id).state, "recorded in the shared file")
            again.shutdown()
            ctx.noBackupFilesDir.listFiles()!!.forEach { f ->
                assertFalse(String(f.readBytes(), Charsets.ISO_8859_1).contains("dev-alice"), "token found in ${f.name}")
            }
        }
    }

    @Test
    fun enableStoresOnlyTheTargetAndSchedulesOnePeriodicWork() {
        val ctx = TestContext()
        val wm = WorkManager.getInstance(ctx)
        wm.testPeriodic.clear()
        wm.testCancelled.clear()
        val target = targetIn(ctx, "https://sync.example.test")
        OutboxBackground.setTokenProvider(FixedToken)
        OutboxBackground.enable(ctx, target, minIntervalMinutes = 30, requiresCharging = true)

        assertEquals(target, OutboxBackground.target(ctx))
        val stored = File(ctx.noBackupFilesDir, OutboxBackground.TARGET_FILE).readText()
        assertFalse("dev-alice" in stored || "token" in stored.lowercase(), "no secret stored: $stored")
        val keys = stored.lines().filter { it.isNotBlank() && !it.startsWith("#") }.map { it.substringBefore('=') }.toSet()
        assertEquals(setOf("path", "userId", "workspaceId", "serverUrl"), keys)

        val work = wm.testPeriodic.single()
        assertEquals(OutboxBackground.PERIODIC_WORK_NAME, work.name)
        assertEquals(ExistingPeriodicWorkPolicy.UPDATE, work.policy, "enabling again replaces the schedule")
        assertEquals(OutboxDrainWorker::class.java, work.request.testWorkerClass)
        assertEquals(30 * 60_000L, work.request.testIntervalMs)
        assertEquals(NetworkType.CONNECTED, work.request.testConstraints?.requiredNetworkType)
        assertEquals(true, work.request.testConstraints?.requiresCharging)
        assertEquals(
            BackgroundDrainScheduler.DEFAULT_BUDGET_MS,
            work.request.testInputData.getLong(OutboxDrainWorker.KEY_BUDGET_MS, -1),
        )

        OutboxBackground.disable(ctx)
        assertEquals(listOf(OutboxBackground.PERIODIC_WORK_NAME), wm.testCancelled.toList())
        assertNull(OutboxBackground.target(ctx))
    }

    @Test
    fun badScheduleOrTargetIsRefusedAndNothingIsScheduled() {
        val ctx = TestContext()
        val wm = WorkManager.getInstance(ctx)
        wm.testPeriodic.clear()
        assertFailsWith<IllegalArgumentException> { OutboxBackground.enable(ctx, targetIn(ctx, null), minIntervalMinutes = 14) }
        assertFailsWith<IllegalArgumentException> {
            OutboxBackground.enable(ctx, BackgroundDrainTarget("relative.db", "alice", "ws-1", null), minIntervalMinutes = 15)
        }
        assertFailsWith<IllegalArgumentException> {
            OutboxBackground.enable(ctx, targetIn(ctx, "ftp://x"), minIntervalMinutes = 15)
        }
        assertFailsWith<IllegalArgumentException> {
            OutboxBackground.enable(ctx, BackgroundDrainTarget(targetIn(ctx, null).path, "", "ws-1", null), minIntervalMinutes = 15)
        }
        assertTrue(wm.testPeriodic.isEmpty())
        assertNull(OutboxBackground.target(ctx))
    }

    @Test
    fun aRunWithoutATokenProviderFailsAndAWorkerWithNothingEnabledFails() = runBlocking {
        val ctx = onlineContext()
        OutboxBackground.enable(ctx, targetIn(ctx, "http://127.0.0.1:${closedPort()}"), minIntervalMinutes = 15)
        assertIs<ListenableWorker.Result.Failure>(worker(ctx).doWork(), "no token provider registered in this process")
        OutboxBackground.disable(ctx)
        OutboxBackground.setTokenProvider(FixedToken)
        assertIs<ListenableWorker.Result.Failure>(worker(ctx).doWork(), "nothing enabled")
        Unit
    }
}
