package dev.outbox.android.tests

import dev.outbox.android.ConnectivityDebouncer
import dev.outbox.android.CoroutineDelayScheduler
import kotlin.test.Test
import kotlin.test.assertEquals
import kotlin.test.assertNull
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.cancel
import kotlinx.coroutines.runBlocking

class ConnectivityDebouncerTest {
    private val clock = ManualScheduler()
    private val reports = mutableListOf<Boolean>()
    private val debouncer = ConnectivityDebouncer(clock, offlineDelayMs = 500) { reports += it }

    @Test
    fun onlineIsReportedAtOnce() {
        debouncer.update(true)
        assertEquals(listOf(true), reports)
        assertEquals(0, clock.pendingCount)
    }

    @Test
    fun offlineIsReportedOnlyAfterTheDelay() {
        debouncer.seed(true)
        debouncer.update(false)
        clock.advanceBy(499)
        assertEquals(listOf(true), reports)
        clock.advanceBy(1)
        assertEquals(listOf(true, false), reports)
        assertEquals(false, debouncer.lastReported)
    }

    @Test
    fun aFlapShorterThanTheDelayIsNeverReported() {
        debouncer.seed(true)
        repeat(5) {
            debouncer.update(false)
            clock.advanceBy(300)
            debouncer.update(true)
            clock.advanceBy(300)
        }
        assertEquals(listOf(true), reports)
        assertEquals(0, clock.pendingCount)
    }

    @Test
    fun repeatedOfflineObservationsKeepTheFirstDeadline() {
        debouncer.seed(true)
        debouncer.update(false)
        clock.advanceBy(300)
        debouncer.update(false) // e.g. onLost then onCapabilitiesChanged without VALIDATED
        clock.advanceBy(200)
        assertEquals(listOf(true, false), reports)
    }

    @Test
    fun onlyChangesAreReported() {
        debouncer.update(true)
        debouncer.update(true)
        debouncer.seed(true)
        assertEquals(listOf(true), reports)
    }

    @Test
    fun seedReportsAtOnceAndDropsAPendingChange() {
        debouncer.seed(true)
        debouncer.update(false)
        debouncer.seed(true)
        clock.advanceBy(1_000)
        assertEquals(listOf(true), reports)
        debouncer.seed(false)
        assertEquals(listOf(true, false), reports)
    }

    @Test
    fun cancelDropsThePendingReport() {
        debouncer.seed(true)
        debouncer.update(false)
        debouncer.cancel()
        clock.advanceBy(1_000)
        assertEquals(listOf(true), reports)
    }

    @Test
    fun anOnlineDelayDebouncesComingBackToo() {
        val d = ConnectivityDebouncer(clock, offlineDelayMs = 500, onlineDelayMs = 200) { reports += it }
        assertNull(d.lastReported)
        d.seed(false)
        d.update(true)
        clock.advanceBy(100)
        d.update(false)
        clock.advanceBy(1_000)
        assertEquals(listOf(false), reports)
        d.update(true)
        clock.advanceBy(200)
        assertEquals(listOf(false, true), reports)
    }

    @Test
    fun coroutineSchedulerRunsAndCancelsInRealTime() = runBlocking {
        val scope = CoroutineScope(Dispatchers.Default)
        val seen = java.util.concurrent.CopyOnWriteArrayList<Boolean>()
        val d = ConnectivityDebouncer(CoroutineDelayScheduler(scope), offlineDelayMs = 50) { seen += it }
        d.seed(true)
        d.update(false)
        d.update(true) // undone before the delay: never reported
        Thread.sleep(150)
        assertEquals(listOf(true), seen.toList())
        d.update(false)
        eventually(message = "offline reported") { seen.toList() == listOf(true, false) }
        scope.cancel()
    }
}
