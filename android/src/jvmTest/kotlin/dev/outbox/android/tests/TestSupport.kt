package dev.outbox.android.tests

import android.content.Context
import android.net.ConnectivityManager
import dev.outbox.android.Cancellable
import dev.outbox.android.DelayScheduler
import java.io.File
import java.net.ServerSocket
import java.net.Socket
import java.nio.file.Files
import kotlin.concurrent.thread
import kotlinx.coroutines.delay
import kotlinx.coroutines.withTimeout
import uniffi.outbox_ffi.MutatorOptions
import uniffi.outbox_ffi.Outbox
import uniffi.outbox_ffi.OutboxConfig
import uniffi.outbox_ffi.TokenProvider

/** A fresh directory under the system temp dir, deleted when the JVM exits. */
fun tempDir(prefix: String): File = Files.createTempDirectory(prefix).toFile().also { it.deleteOnExit() }

/** The application context a test hands to the adapters: a temp no-backup dir and a fake ConnectivityManager. */
class TestContext(
    override val noBackupFilesDir: File = tempDir("outbox-android"),
    val connectivity: ConnectivityManager = ConnectivityManager(),
) : Context() {
    override val applicationContext: Context
        get() = this

    @Suppress("UNCHECKED_CAST")
    override fun <T> getSystemService(serviceClass: Class<T>): T? =
        if (serviceClass == ConnectivityManager::class.java) connectivity as T else null
}

/** A manual clock for [DelayScheduler]: nothing runs until [advanceBy] passes its deadline. */
class ManualScheduler : DelayScheduler {
    private class Task(val at: Long, val action: () -> Unit) {
        var cancelled = false
    }

    private val tasks = mutableListOf<Task>()

    /** The current manual time in milliseconds. */
    var now = 0L
        private set

    /** Tasks scheduled and neither run nor cancelled. */
    val pendingCount: Int
        get() = synchronized(tasks) { tasks.count { !it.cancelled } }

    override fun schedule(delayMs: Long, action: () -> Unit): Cancellable {
        val task = Task(now + delayMs, action)
        synchronized(tasks) { tasks += task }
        return Cancellable { task.cancelled = true }
    }

    /** Moves time forward, running due tasks in deadline order. */
    fun advanceBy(ms: Long) {
        val end = now + ms
        while (true) {
            val next = synchronized(tasks) {
                tasks.filter { !it.cancelled && it.at <= end }.minByOrNull { it.at }?.also { tasks -= it }
            } ?: break
            now = next.at
            next.action()
        }
        now = end
    }
}

/** The reference server's dev token for `alice`. */
object FixedToken : TokenProvider {
    override suspend fun token(forceRefresh: Boolean): String = "dev-alice"
}

/** The mutator every test enqueues. */
const val MUTATOR = "createOrder"

/** Opens a real engine on a temp database file. */
suspend fun openOutbox(
    dir: File = tempDir("outbox-engine"),
    serverUrl: String? = null,
    startOnline: Boolean = true,
): Outbox {
    val config = OutboxConfig(
        path = File(dir, "outbox.db").absolutePath,
        userId = "alice",
        workspaceId = "ws-1",
        serverUrl = serverUrl,
        startOnline = startOnline,
    )
    val outbox = if (serverUrl != null) Outbox.openWithTokens(config, FixedToken) else Outbox.open(config)
    outbox.registerMutator(MUTATOR, MutatorOptions())
    return outbox
}

/** Polls [condition] every 10 ms until it holds or [timeoutMs] passes (then fails the test). */
suspend fun eventually(timeoutMs: Long = 5_000, message: String = "condition", condition: suspend () -> Boolean) {
    try {
        withTimeout(timeoutMs) {
            while (!condition()) delay(10)
        }
    } catch (e: kotlinx.coroutines.TimeoutCancellationException) {
        throw AssertionError("$message did not hold within $timeoutMs ms")
    }
}

/** A TCP port on 127.0.0.1 with nothing listening (connections are refused). */
fun closedPort(): Int = ServerSocket(0).use { it.localPort }

/**
 * A server that accepts connections and never answers: every attempt hangs until its
 * attempt timeout, like a server stuck behind a dead proxy.
 */
class SilentServer : AutoCloseable {
    private val socket = ServerSocket(0)
    private val held = java.util.Collections.synchronizedList(mutableListOf<Socket>())

    /** Base URL to pass as `serverUrl`. */
    val url = "http://127.0.0.1:${socket.localPort}"

    init {
        thread(isDaemon = true, name = "silent-server") {
            while (!socket.isClosed) {
                try {
                    held += socket.accept()
                } catch (_: java.io.IOException) {
                    break
                }
            }
        }
    }

    override fun close() {
        socket.close()
        held.forEach { runCatching { it.close() } }
    }
}

/**
 * The reference sync server (`outbox-server --dev`, path in `OUTBOX_SERVER_BIN`, set by
 * scripts/suites/kotlin.sh) as a child process on 127.0.0.1; dev user `alice` in `ws-1`.
 */
class ReferenceServer : AutoCloseable {
    private val dir = tempDir("outbox-android-server")
    private val process: Process

    /** Base URL to pass as `serverUrl`. */
    val url: String

    init {
        val bin = System.getenv("OUTBOX_SERVER_BIN") ?: error("OUTBOX_SERVER_BIN is not set (run scripts/test.sh kotlin)")
        process = ProcessBuilder(bin, "--addr", "127.0.0.1:0", "--dev", "--db", File(dir, "server.db").path)
            .redirectError(ProcessBuilder.Redirect.INHERIT)
            .start()
        val line = process.inputStream.bufferedReader().readLine() ?: error("the server exited before listening")
        url = Regex("^listening on (http://127\\.0\\.0\\.1:\\d+)").find(line)?.groupValues?.get(1)
            ?: error("unexpected first line from the server: $line")
    }

    /** `GET path` as alice in ws-1; the body as text. */
    fun get(path: String): String {
        val conn = java.net.URI(url + path).toURL().openConnection() as java.net.HttpURLConnection
        conn.setRequestProperty("Authorization", "Bearer dev-alice")
        conn.setRequestProperty("X-Workspace-Id", "ws-1")
        return conn.inputStream.bufferedReader().use { it.readText() }
    }

    /** Stops the child this test started, by its handle. */
    override fun close() {
        process.destroy()
        if (!process.waitFor(3, java.util.concurrent.TimeUnit.SECONDS)) process.destroyForcibly()
        dir.deleteRecursively()
    }
}
