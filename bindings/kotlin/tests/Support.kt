// Test support: the real reference server as a child process on loopback, temporary
// database files, and waiting helpers. Nothing here stands in for an Outbox component.
package outbox.tests

import java.io.File
import java.net.HttpURLConnection
import java.net.URI
import java.nio.file.Files
import java.util.concurrent.TimeUnit
import kotlinx.coroutines.delay
import kotlinx.coroutines.withTimeout
import uniffi.outbox_ffi.EnqueueRequest
import uniffi.outbox_ffi.MutatorOptions
import uniffi.outbox_ffi.Outbox
import uniffi.outbox_ffi.OutboxConfig
import uniffi.outbox_ffi.TokenProvider

/** The reference server (`target/debug/outbox-server --dev --admin`) on 127.0.0.1. */
class TestServer private constructor(private val process: Process, val url: String, private val dir: File) : AutoCloseable {
    companion object {
        fun start(): TestServer {
            val bin = System.getenv("OUTBOX_SERVER_BIN") ?: error("OUTBOX_SERVER_BIN is not set")
            val dir = Files.createTempDirectory("outbox-kt-server").toFile()
            val process = ProcessBuilder(bin, "--addr", "127.0.0.1:0", "--dev", "--admin", "--db", File(dir, "server.db").path)
                .redirectError(ProcessBuilder.Redirect.INHERIT)
                .start()
            val line = process.inputStream.bufferedReader().readLine() ?: error("the server exited before listening")
            val url = Regex("^listening on (http://127\\.0\\.0\\.1:\\d+)").find(line)?.groupValues?.get(1)
                ?: error("unexpected first line from the server: $line")
            return TestServer(process, url, dir)
        }
    }

    /** `GET path` as alice in ws-1; the body as text. */
    fun get(path: String): String {
        val conn = URI(url + path).toURL().openConnection() as HttpURLConnection
        conn.setRequestProperty("Authorization", "Bearer dev-alice")
        conn.setRequestProperty("X-Workspace-Id", "ws-1")
        return conn.inputStream.bufferedReader().readText()
    }

    /** Stops the child this test started, by its handle. */
    override fun close() {
        process.destroy()
        if (!process.waitFor(3, TimeUnit.SECONDS)) process.destroyForcibly()
        dir.deleteRecursively()
    }
}

/** A token provider that counts its calls and can refuse the first token. */
class CountingTokens(private var first: String = "dev-alice") : TokenProvider {
    val calls = java.util.concurrent.atomic.AtomicInteger()
    val forced = java.util.concurrent.atomic.AtomicInteger()
    override suspend fun token(forceRefresh: Boolean): String {
        calls.incrementAndGet()
        if (forceRefresh) {
            forced.incrementAndGet()
            first = "dev-alice"
        }
        return first
    }
}

fun tempDb(name: String = "outbox.db"): File = File(Files.createTempDirectory("outbox-kt").toFile(), name)

fun config(db: File, server: TestServer? = null, online: Boolean = true) = OutboxConfig(
    path = db.path,
    userId = "alice",
    workspaceId = "ws-1",
    serverUrl = server?.url,
    startOnline = online,
    retryBaseMs = 50uL,
    retryCapMs = 500uL,
)

/** Opens an outbox with `createOrder` and `put` registered. */
suspend fun openOutbox(db: File, server: TestServer? = null, online: Boolean = true, tokens: TokenProvider? = null): Outbox {
    val cfg = config(db, server, online)
    val ob = if (server != null) Outbox.openWithTokens(cfg, tokens ?: CountingTokens()) else Outbox.open(cfg)
    ob.registerMutator("createOrder", MutatorOptions())
    ob.registerMutator("put", MutatorOptions())
    return ob
}

fun order(id: String, product: String = "espresso", qty: Int = 1) =
    EnqueueRequest(mutator = "createOrder", args = """{"id":"$id","lines":[{"product_id":"$product","qty":$qty}]}""")

/** Polls `check` until it holds or 10 s pass. */
suspend fun eventually(what: String, check: suspend () -> Boolean) {
    withTimeout(10_000) {
        while (!check()) delay(20)
    }
    if (!check()) error("never happened: $what")
}
