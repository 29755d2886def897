// JVM COMPILE STUB — not shipped. android.net.ConnectivityManager, the members dev.outbox.android
// uses. Behaves like a tiny fake system service: tests set the active network and drive the
// registered callbacks by hand (members marked "test hook" do not exist in the SDK).
package android.net

/** Stub of `android.net.ConnectivityManager`. */
open class ConnectivityManager {
    /** Test hook: the network `activeNetwork` returns. */
    var testActiveNetwork: Network? = null

    /** Test hook: capabilities `getNetworkCapabilities` returns, per network. */
    val testCapabilities = mutableMapOf<Network, NetworkCapabilities>()

    /** Test hook: callbacks currently registered. */
    val testCallbacks = mutableListOf<NetworkCallback>()

    /** Real: `getActiveNetwork()` (API 23). */
    open val activeNetwork: Network?
        get() = testActiveNetwork

    /** Real: `getNetworkCapabilities(Network)`. */
    open fun getNetworkCapabilities(network: Network?): NetworkCapabilities? = network?.let { testCapabilities[it] }

    /** Real: `registerDefaultNetworkCallback(NetworkCallback)` (API 24). */
    open fun registerDefaultNetworkCallback(networkCallback: NetworkCallback) {
        testCallbacks += networkCallback
    }

    /** Real: `unregisterNetworkCallback(NetworkCallback)`. */
    open fun unregisterNetworkCallback(networkCallback: NetworkCallback) {
        testCallbacks -= networkCallback
    }

    /** Stub of `ConnectivityManager.NetworkCallback`. */
    open class NetworkCallback {
        /** Real: `onAvailable(Network)`. */
        open fun onAvailable(network: Network) {}

        /** Real: `onLost(Network)`. */
        open fun onLost(network: Network) {}

        /** Real: `onCapabilitiesChanged(Network, NetworkCapabilities)`. */
        open fun onCapabilitiesChanged(network: Network, networkCapabilities: NetworkCapabilities) {}
    }
}
