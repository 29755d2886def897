package dev.outbox.android

import android.net.ConnectivityManager
import android.net.Network
import android.net.NetworkCapabilities

/**
 * Reports whether the device's default network has validated internet access.
 *
 * A `ConnectivityManager.NetworkCallback` on the default network feeds a [ConnectivityDebouncer]:
 * a network counts as online when it has `NET_CAPABILITY_INTERNET` and `NET_CAPABILITY_VALIDATED`
 * (Android checked it actually reaches the internet, so a captive portal is offline). Only
 * facts go out, through the debouncer's report function (`Outbox.setOnline` in [OutboxAndroid]);
 * what to do about them is the engine's business. Needs `ACCESS_NETWORK_STATE` (declared in the
 * library manifest).
 */
class NetworkMonitor(
    private val connectivityManager: ConnectivityManager,
    private val debouncer: ConnectivityDebouncer,
) {
    private val lock = Any()
    private var current: Network? = null
    private var registered = false

    private val callback = object : ConnectivityManager.NetworkCallback() {
        override fun onAvailable(network: Network) {
            // Not online yet: validation arrives with onCapabilitiesChanged.
            synchronized(lock) { current = network }
        }

        override fun onCapabilitiesChanged(network: Network, networkCapabilities: NetworkCapabilities) {
            synchronized(lock) { current = network }
            debouncer.update(isValidatedInternet(networkCapabilities))
        }

        override fun onLost(network: Network) {
            val wasCurrent = synchronized(lock) {
                (current == null || current == network).also { if (it) current = null }
            }
            // A late onLost for a network the default already moved away from is not "offline".
            if (wasCurrent) debouncer.update(false)
        }
    }

    /** Whether the default network has validated internet right now (a direct read, no debounce). */
    fun isOnlineNow(): Boolean {
        val caps = connectivityManager.getNetworkCapabilities(connectivityManager.activeNetwork)
        return caps != null && isValidatedInternet(caps)
    }

    /** Reports the current state at once, then registers the callback. Idempotent. */
    fun start() {
        synchronized(lock) {
            if (registered) return
            registered = true
        }
        val active = connectivityManager.activeNetwork
        val caps = connectivityManager.getNetworkCapabilities(active)
        synchronized(lock) { current = active }
        debouncer.seed(caps != null && isValidatedInternet(caps))
        connectivityManager.registerDefaultNetworkCallback(callback)
    }

    /** Unregisters the callback and drops a pending debounced report. Idempotent. */
    fun stop() {
        synchronized(lock) {
            if (!registered) return
            registered = false
        }
        connectivityManager.unregisterNetworkCallback(callback)
        debouncer.cancel()
    }

    private fun isValidatedInternet(caps: NetworkCapabilities): Boolean =
        caps.hasCapability(NetworkCapabilities.NET_CAPABILITY_INTERNET) &&
            caps.hasCapability(NetworkCapabilities.NET_CAPABILITY_VALIDATED)
}
