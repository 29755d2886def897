package dev.outbox.android.tests

import android.net.Network
import android.net.NetworkCapabilities
import android.net.NetworkCapabilities.Companion.NET_CAPABILITY_INTERNET
import android.net.NetworkCapabilities.Companion.NET_CAPABILITY_VALIDATED
import androidx.lifecycle.Lifecycle
import androidx.lifecycle.ProcessLifecycleOwner
import androidx.work.WorkManager
import dev.outbox.android.OutboxAndroid
import dev.outbox.android.OutboxAndroidConfig
import uniffi.outbox_ffi.EnqueueRequest
import uniffi.outbox_ffi.MutatorOptions
import uniffi.outbox_ffi.OutboxConfig

/** Validated internet, as Android reports it for a working network. */
val VALIDATED = NetworkCapabilities(NET_CAPABILITY_INTERNET, NET_CAPABILITY_VALIDATED)

/** The command every test enqueues: a one-espresso order (the reference server's POS mutator). */
fun note(n: Int) = EnqueueRequest(mutator = MUTATOR, args = """{"id":"o-$n","lines":[{"product_id":"espresso","qty":1}]}""")

/**
 * Runs [body] with a real [OutboxAndroid] (real engine on a temp database, opened before
 * [body] runs), a fake process in the given lifecycle state, and a network that is validated
 * when [online]; closes it after with the non-suspending `close()` an app calls on logout (the
 * next `init` waits for that engine's shutdown).
 */
suspend inline fun <T> withOutboxAndroid(
    context: TestContext = TestContext(),
    online: Boolean = true,
    process: Lifecycle.State = Lifecycle.State.CREATED,
    serverUrl: String? = null,
    noinline configure: (OutboxConfig) -> OutboxConfig = { it },
    body: (OutboxAndroid, TestContext) -> T,
): T {
    ProcessLifecycleOwner.get().testMoveTo(process)
    WorkManager.getInstance(context).testEnqueued.clear()
    if (online) {
        val wifi = Network()
        context.connectivity.testActiveNetwork = wifi
        context.connectivity.testCapabilities[wifi] = VALIDATED
    }
    val android = OutboxAndroid.init(
        context,
        OutboxAndroidConfig(
            userId = "alice",
            workspaceId = "ws-1",
            serverUrl = serverUrl,
            tokenProvider = if (serverUrl != null) FixedToken else null,
            mutators = mapOf(MUTATOR to MutatorOptions()),
            offlineDebounceMs = 50,
            configure = configure,
        ),
    )
    try {
        // Opened (init returns before the database is open) and the start-up facts applied.
        android.status()
        return body(android, context)
    } finally {
        android.close()
    }
}

/** Recorded `enqueueUniqueWork` calls of the stub WorkManager. */
fun enqueuedWork(context: TestContext) = WorkManager.getInstance(context).testEnqueued.toList()
