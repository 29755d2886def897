package dev.outbox.android.tests

import androidx.lifecycle.Lifecycle
import androidx.lifecycle.ProcessLifecycleOwner
import dev.outbox.android.OutboxAndroid
import dev.outbox.android.OutboxAndroidConfig
import dev.outbox.android.events
import java.io.File
import kotlin.test.Test
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertFalse
import kotlin.test.assertIs
import kotlin.test.assertNull
import kotlin.test.assertSame
import kotlin.test.assertTrue
import kotlinx.coroutines.CoroutineStart
import kotlinx.coroutines.async
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.flow.take
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import uniffi.outbox_ffi.OutboxEvent
import uniffi.outbox_ffi.Status

/** `OutboxAndroid.init` wiring, the suspend API and the flows, against a real engine. */
class OutboxAndroidTest {
    @Test
    fun databaseLivesInTheNoBackupDirectory() = runBlocking {
        withOutboxAndroid { android, ctx ->
            val expected = File(ctx.noBackupFilesDir, "outbox.db")
            assertEquals(expected.absolutePath, android.databasePath)
            android.enqueue(note(1))
            assertTrue(expected.isFile, "the engine wrote ${expected.path}")
            assertSame(android, OutboxAndroid.get())
        }
        assertNull(OutboxAndroid.instanceOrNull(), "close clears the instance")
    }

    @Test
    fun oneInstancePerProcess() = runBlocking {
        withOutboxAndroid { _, ctx ->
            assertFailsWith<IllegalStateException> {
                OutboxAndroid.init(ctx, OutboxAndroidConfig("u1", "w1", null, null, databaseName = "other.db"))
            }
        }
        assertFailsWith<IllegalArgumentException> {
            OutboxAndroid.init(TestContext(), OutboxAndroidConfig("u1", "w1", null, null, databaseName = "../x.db"))
        }
        assertNull(OutboxAndroid.instanceOrNull())
    }

    @Test
    fun initReportsTheCurrentNetworkAndLifecycle() = runBlocking {
        withOutboxAndroid(online = false, process = Lifecycle.State.RESUMED) { android, _ ->
            val s = android.status()
            assertFalse(s.online, "no validated network at init")
            assertTrue(s.foreground)
            ProcessLifecycleOwner.get().testMoveTo(Lifecycle.State.CREATED)
            assertFalse(android.status().foreground)
        }
        withOutboxAndroid(online = true, process = Lifecycle.State.CREATED) { android, _ ->
            val s = android.status()
            assertTrue(s.online)
            assertFalse(s.foreground, "process started in the background")
        }
    }

    @Test
    fun networkCallbacksReachTheEngineWithTheDebounce() = runBlocking {
        withOutboxAndroid(online = true) { android, ctx ->
            assertTrue(android.status().online)
            val cb = ctx.connectivity.testCallbacks.single()
            val wifi = ctx.connectivity.testActiveNetwork!!
            cb.onLost(wifi)
            assertTrue(android.status().online, "offline is debounced (50 ms in these tests)")
            eventually(message = "offline after the debounce") { !android.outbox().status().online }
            cb.onAvailable(wifi)
            cb.onCapabilitiesChanged(wifi, VALIDATED)
            assertTrue(android.status().online, "online at once")
        }
    }

    @Test
    fun eventsFlowDeliversEngineEventsAndEndsOnClose() = runBlocking {
        val events = mutableListOf<OutboxEvent>()
        lateinit var id: String
        val collected = withOutboxAndroid(online = false) { android, _ ->
            val job = launch(start = CoroutineStart.UNDISPATCHED) { android.events.collect { events += it } }
            // The listener is registered when collection starts.
            eventually(message = "subscribed") { job.isActive }
            kotlinx.coroutines.delay(50)
            id = android.enqueue(note(1))
            eventually(message = "Enqueued event") { events.any { it is OutboxEvent.Enqueued } }
            job
        }
        withTimeout(2_000) { collected.join() } // close() ended the flow
        val enqueued = events.filterIsInstance<OutboxEvent.Enqueued>().single()
        assertEquals(id, enqueued.id)
        assertEquals(MUTATOR, enqueued.mutator)
    }

    @Test
    fun statusFlowStartsWithTheCurrentStatusAndFollowsChanges() = runBlocking {
        withOutboxAndroid(online = false) { android, _ ->
            val first = android.statusFlow.first()
            assertEquals(0uL, first.pending)
            val later = async { android.statusFlow.first { it.pending == 2uL } }
            android.enqueue(note(1))
            android.enqueue(note(2))
            val s: Status = withTimeout(5_000) { later.await() }
            assertIs<Status>(s)
            assertFalse(s.online)
        }
    }

    @Test
    fun eachCollectorHasItsOwnSubscription(): Unit = runBlocking {
        withOutboxAndroid(online = false) { android, _ ->
            val a = async(start = CoroutineStart.UNDISPATCHED) {
                android.outbox().events().take(1).toList()
            }
            val b = async(start = CoroutineStart.UNDISPATCHED) {
                android.outbox().events().take(1).toList()
            }
            kotlinx.coroutines.delay(50)
            android.enqueue(note(1))
            withTimeout(5_000) {
                assertIs<OutboxEvent.Enqueued>(a.await().single())
                assertIs<OutboxEvent.Enqueued>(b.await().single())
            }
        }
    }
}
