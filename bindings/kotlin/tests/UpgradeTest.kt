// Shipping a new version of a mutator from Kotlin: a Kotlin MutatorUpgrader upgrades the
// queue of the "old app" at registration, against the real library and the real server.
package outbox.tests

import kotlin.test.Test
import kotlin.test.assertEquals
import kotlin.test.assertIs
import kotlin.test.assertTrue
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import uniffi.outbox_ffi.CommandState
import uniffi.outbox_ffi.MutatorOptions
import uniffi.outbox_ffi.MutatorUpgrader
import uniffi.outbox_ffi.Outbox
import uniffi.outbox_ffi.Settlement
import uniffi.outbox_ffi.UpgradeException
import uniffi.outbox_ffi.UpgradeReport

/** createOrder v1 → v2: `lines[{product_id, qty}]` become `items[{sku, quantity}]`. */
object OrderV1ToV2 : MutatorUpgrader {
    private val line = Regex("""\{"product_id":"([^"]*)","qty":(\d+)\}""")

    override fun upgrade(fromVersion: UInt, args: String): String {
        if (fromVersion != 1u) throw UpgradeException.Failed("no upgrade from version $fromVersion")
        val lines = Regex(""""lines":\[(.*)]""").find(args) ?: throw UpgradeException.Failed("no lines in $args")
        val items = line.findAll(lines.groupValues[1]).joinToString(",") {
            """{"sku":"${it.groupValues[1]}","quantity":${it.groupValues[2]}}"""
        }
        return args.replace(lines.value, """"items":[$items]""")
    }
}

class UpgradeTest {
    /** The old app's queue: one v1 sale, never attempted, in a closed database. */
    private suspend fun oldAppQueue(db: java.io.File, server: TestServer, orderId: String): String {
        val old = openOutbox(db, server, online = false)
        val id = old.enqueue(order(orderId, "latte", 2))
        old.shutdown()
        old.close()
        return id
    }

    private suspend fun newApp(db: java.io.File, server: TestServer): Outbox =
        Outbox.openWithTokens(config(db, server, online = false), CountingTokens())

    @Test
    fun aKotlinUpgraderUpgradesTheQueueAndTheServerAppliesVersion2() = runBlocking {
        TestServer.start().use { server ->
            val db = tempDb()
            val id = oldAppQueue(db, server, "kt-up-1")
            val ob = newApp(db, server)
            val report = ob.registerMutatorWithUpgrader("createOrder", MutatorOptions(version = 2u), OrderV1ToV2)
            assertEquals(UpgradeReport(upgraded = 1uL, wedged = 0uL), report)
            val cmd = ob.command(id)
            assertEquals(2u, cmd.mutatorVersion)
            assertEquals("""{"id":"kt-up-1","items":[{"sku":"latte","quantity":2}]}""", cmd.args)
            ob.setOnline(true)
            val settled = withTimeout(10_000) { ob.waitFor(id) }
            assertIs<Settlement.Succeeded>(settled)
            assertTrue(settled.result.contains("\"total\":840"), settled.result)
            ob.shutdown()
            ob.close()
        }
    }

    @Test
    fun aThrowingKotlinUpgraderParksTheCommandWedgedAndUntouched() = runBlocking {
        TestServer.start().use { server ->
            val db = tempDb()
            val id = oldAppQueue(db, server, "kt-up-2")
            val ob = newApp(db, server)
            val refusing = object : MutatorUpgrader {
                override fun upgrade(fromVersion: UInt, args: String): String = throw UpgradeException.Failed("manager approval needed")
            }
            val report = ob.registerMutatorWithUpgrader("createOrder", MutatorOptions(version = 2u), refusing)
            assertEquals(UpgradeReport(upgraded = 0uL, wedged = 1uL), report)
            val cmd = ob.command(id)
            assertEquals(CommandState.WEDGED, cmd.state)
            assertEquals(1u, cmd.mutatorVersion)
            val wedged = assertIs<Settlement.Wedged>(cmd.settlement)
            assertTrue(wedged.reason.contains("manager approval needed"), wedged.reason)
            ob.shutdown()
            ob.close()
        }
    }
}
