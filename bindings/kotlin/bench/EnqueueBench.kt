// Per-call cost of the Kotlin bindings: durable enqueue from Kotlin (JNA → liboutbox_ffi)
// with the same args and pragmas as `outbox-bench --bench enqueue` (Rust, no FFI), and a
// trivial call (`outboxVersion`) for the bare boundary cost. One JSON line per result.
// Run: scripts/bench-kotlin.sh [n]
package outbox.bench

import java.nio.file.Files
import kotlinx.coroutines.runBlocking
import uniffi.outbox_ffi.Durability
import uniffi.outbox_ffi.EnqueueRequest
import uniffi.outbox_ffi.MutatorOptions
import uniffi.outbox_ffi.Outbox
import uniffi.outbox_ffi.OutboxConfig
import uniffi.outbox_ffi.outboxVersion

fun orderArgs(i: Int) =
    """{"id":"order-$i","register":"r1","lines":[{"product_id":"espresso","qty":1,"price":280},{"product_id":"croissant","qty":2,"price":350}],"total":980}"""

fun line(bench: String, durability: String, n: Int, lat: LongArray, totalNs: Long): String {
    lat.sort()
    val p = { q: Double -> lat[((lat.size - 1) * q).toInt()] / 1e6 }
    return """{"bench":"$bench","system":"kotlin-ffi","durability":"$durability","n":$n,"ops_per_s":${"%.0f".format(n / (totalNs / 1e9))},""" +
        """"mean_us":${"%.2f".format(totalNs / 1e3 / n)},"p50_ms":${"%.4f".format(p(0.5))},"p99_ms":${"%.4f".format(p(0.99))},"total_ms":${"%.1f".format(totalNs / 1e6)}}"""
}

// Each enqueue is a `suspend` call awaited at once (as an app's coroutine would): the figure
// includes the hop to the core's blocking pool and back.
suspend fun enqueue(n: Int, durability: Durability): String {
    val dir = Files.createTempDirectory("outbox-kt-bench").toFile()
    val ob = Outbox.open(OutboxConfig(path = "$dir/bench.db", userId = "bench", workspaceId = "ws", startOnline = false, durability = durability))
    ob.registerMutator("createOrder", MutatorOptions())
    repeat(200) { ob.enqueue(EnqueueRequest("createOrder", orderArgs(-it - 1))) } // warm-up (JIT, page cache)
    val lat = LongArray(n)
    val start = System.nanoTime()
    for (i in 0 until n) {
        val t = System.nanoTime()
        ob.enqueue(EnqueueRequest("createOrder", orderArgs(i)))
        lat[i] = System.nanoTime() - t
    }
    val total = System.nanoTime() - start
    ob.shutdown()
    dir.deleteRecursively()
    return line("enqueue", durability.name.lowercase(), n, lat, total)
}

fun bareCall(n: Int): String {
    repeat(10_000) { outboxVersion() }
    val lat = LongArray(n)
    val start = System.nanoTime()
    for (i in 0 until n) {
        val t = System.nanoTime()
        outboxVersion()
        lat[i] = System.nanoTime() - t
    }
    return line("ffi-call", "-", n, lat, System.nanoTime() - start)
}

fun main(args: Array<String>) = runBlocking {
    val n = args.firstOrNull()?.toInt() ?: 10_000
    println(enqueue(n, Durability.FULL))
    println(enqueue(n, Durability.NORMAL))
    println(bareCall(100_000))
}
