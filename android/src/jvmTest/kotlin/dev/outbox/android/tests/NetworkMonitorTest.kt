package dev.outbox.android.tests

import android.net.ConnectivityManager
import android.net.Network
import android.net.NetworkCapabilities
import android.net.NetworkCapabilities.Companion.NET_CAPABILITY_INTERNET
import android.net.NetworkCapabilities.Companion.NET_CAPABILITY_VALIDATED
import dev.outbox.android.ConnectivityDebouncer
import dev.outbox.android.NetworkMonitor
import kotlin.test.Test
import kotlin.test.assertEquals
import kotlin.test.assertFalse
import kotlin.test.assertTrue
import kotlinx.coroutines.runBlocking

/** The NetworkCallback adapter against a real engine: callbacks in, `status().online` out. */
class NetworkMonitorTest {
    private val validated = NetworkCapabilities(NET_CAPABILITY_INTERNET, NET_CAPABILITY_VALIDATED)
    private val unvalidated = NetworkCapabilities(NET_CAPABILITY_INTERNET)

    private fun withMonitor(
        startOnline: Boolean,
        body: suspend (ConnectivityManager, ManualScheduler, uniffi.outbox_ffi.Outbox) -> Unit,
    ) = runBlocking {
        val outbox = openOutbox(startOnline = startOnline)
        val cm = ConnectivityManager()
        val clock = ManualScheduler()
        try {
            body(cm, clock, outbox)
        } finally {
            outbox.close()
        }
    }

    @Test
    fun validatedNetworkGoesOnlineAtOnceAndLossGoesOfflineAfterTheDebounce() = runBlocking {
        val outbox = openOutbox(startOnline = false)
        val cm = ConnectivityManager()
        val clock = ManualScheduler()
        val monitor = NetworkMonitor(cm, ConnectivityDebouncer(clock, offlineDelayMs = 500) { runBlocking { outbox.setOnline(it) } })
        try {
            monitor.start()
            assertFalse(outbox.status().online, "no active network at start")
            val cb = cm.testCallbacks.single()
            val wifi = Network()

            cb.onAvailable(wifi)
            assertFalse(outbox.status().online, "available but not validated yet")
            cb.onCapabilitiesChanged(wifi, unvalidated)
            assertFalse(outbox.status().online, "captive portal: internet but not validated")
            cb.onCapabilitiesChanged(wifi, validated)
            assertTrue(outbox.status().online, "validated: online immediately")

            cb.onLost(wifi)
            clock.advanceBy(499)
            assertTrue(outbox.status().online, "still online inside the debounce window")
            clock.advanceBy(1)
            assertFalse(outbox.status().online, "offline once the debounce expired")

            monitor.stop()
            assertTrue(cm.testCallbacks.isEmpty(), "callback unregistered")
        } finally {
            outbox.close()
        }
    }

    @Test
    fun startReportsTheCurrentNetworkWithoutWaiting() = runBlocking {
        val outbox = openOutbox(startOnline = true)
        val cm = ConnectivityManager()
        val clock = ManualScheduler()
        val monitor = NetworkMonitor(cm, ConnectivityDebouncer(clock) { runBlocking { outbox.setOnline(it) } })
        try {
            // No default network: the engine hears "offline" at start, not 500 ms later.
            monitor.start()
            assertFalse(outbox.status().online)
            monitor.stop()

            val cell = Network()
            cm.testActiveNetwork = cell
            cm.testCapabilities[cell] = validated
            assertTrue(monitor.isOnlineNow())
            monitor.start()
            assertTrue(outbox.status().online)
        } finally {
            monitor.stop()
            outbox.close()
        }
    }

    @Test
    fun aHandOverBetweenNetworksDoesNotGoOffline() {
        withMonitor(startOnline = false) { cm, clock, outbox ->
            val wifi = Network()
            val cell = Network()
            cm.testActiveNetwork = wifi
            cm.testCapabilities[wifi] = validated
            NetworkMonitor(cm, ConnectivityDebouncer(clock) { runBlocking { outbox.setOnline(it) } }).run {
                start()
                assertTrue(outbox.status().online)
                val cb = cm.testCallbacks.single()
                // The default moves to cellular, then the old Wi-Fi is reported lost.
                cb.onAvailable(cell)
                cb.onCapabilitiesChanged(cell, validated)
                cb.onLost(wifi)
                clock.advanceBy(1_000)
                assertTrue(outbox.status().online, "a late onLost of the old network is not offline")
                // Validation lost on the current network (captive portal after roaming).
                cb.onCapabilitiesChanged(cell, unvalidated)
                clock.advanceBy(500)
                assertFalse(outbox.status().online)
                stop()
            }
        }
    }

    @Test
    fun flappingDoesNotReachTheEngine() {
        withMonitor(startOnline = false) { cm, clock, outbox ->
            val wifi = Network()
            cm.testActiveNetwork = wifi
            cm.testCapabilities[wifi] = validated
            val changes = java.util.concurrent.CopyOnWriteArrayList<Boolean>()
            val sub = outbox.subscribe(object : uniffi.outbox_ffi.EventListener {
                override fun onEvent(event: uniffi.outbox_ffi.OutboxEvent) {
                    if (event is uniffi.outbox_ffi.OutboxEvent.OnlineChanged) changes += event.online
                }
            })
            NetworkMonitor(cm, ConnectivityDebouncer(clock) { runBlocking { outbox.setOnline(it) } }).run {
                start()
                val cb = cm.testCallbacks.single()
                repeat(10) {
                    cb.onLost(wifi)
                    clock.advanceBy(200)
                    cb.onAvailable(wifi)
                    cb.onCapabilitiesChanged(wifi, validated)
                    clock.advanceBy(200)
                }
                assertTrue(outbox.status().online)
                stop()
            }
            Thread.sleep(100) // listeners run on an engine thread
            sub.cancel()
            assertEquals(listOf(true), changes.toList(), "one OnlineChanged (the start), no flapping")
        }
    }
}
