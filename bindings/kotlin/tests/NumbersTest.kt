// Numbers from Kotlin: random doubles survive enqueue, the device store, the wire, the
// server and a second device's pull bit for bit (against the real library and server).
package outbox.tests

import kotlin.random.Random
import kotlin.test.Test
import kotlin.test.assertEquals
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import uniffi.outbox_ffi.EnqueueRequest
import uniffi.outbox_ffi.OpKind
import uniffi.outbox_ffi.OptimisticOp
import uniffi.outbox_ffi.Query
import uniffi.outbox_ffi.Settlement

class NumbersTest {
    private val number = Regex("""\{"v":([^}]*)}""")

    /** `n` finite doubles from random bit patterns, plus the values the issue saw change. */
    private fun randomDoubles(n: Int): List<Double> {
        val seed = Random.nextLong()
        println("numbers: $n random doubles, seed $seed")
        val r = Random(seed)
        return generateSequence { Double.fromBits(r.nextLong()) }.filter { it.isFinite() }.take(n).toList() +
            listOf(123456789.12345679, 3.7826751235084986e-121, Double.MAX_VALUE, Double.MIN_VALUE, 0.1 + 0.2)
    }

    private fun changed(where: String, sent: List<Double>, got: List<String?>) {
        val bad = sent.indices.filter { i -> got[i]?.let { number.find(it)?.groupValues?.get(1)?.toDouble() }?.toRawBits() != sent[i].toRawBits() }
        assertEquals(emptyList(), bad.take(5).map { "${sent[it]} came back as ${got[it]}" }, "$where: ${bad.size} of ${sent.size} changed")
    }

    @Test
    fun randomDoublesRoundTripBitForBit() = runBlocking {
        TestServer.start().use { server ->
            val values = randomDoubles(300)
            val a = openOutbox(tempDb(), server, online = false)
            val ids = values.mapIndexed { i, v ->
                val doc = """{"v":$v}"""
                a.enqueue(
                    EnqueueRequest(
                        mutator = "put",
                        args = """{"collection":"ktnums","id":"n$i","doc":$doc}""",
                        ops = listOf(OptimisticOp("ktnums", "n$i", OpKind.Insert(doc))),
                    ),
                )
            }
            changed("device store", values, values.indices.map { a.get("ktnums", "n$it")?.value })
            a.setOnline(true)
            for (id in ids) assert(withTimeout(30_000) { a.waitFor(id) } is Settlement.Succeeded)
            val b = openOutbox(tempDb("second.db"), server, online = true)
            eventually("the second device pulled every number") { b.count("ktnums", Query()) == values.size.toULong() }
            changed("second device", values, values.indices.map { b.get("ktnums", "n$it")?.value })
            for (ob in listOf(a, b)) {
                ob.shutdown()
                ob.close()
            }
        }
    }
}
