// Runs the JUnit 5 tests of the given packages on the JUnit Platform Launcher, prints one
// line per test and then `N passed, N failed` alone on a line; exits 1 on any failure or
// when no test was found.
package outbox.testrunner

import java.io.PrintWriter
import kotlin.system.exitProcess
import org.junit.platform.engine.TestExecutionResult
import org.junit.platform.engine.discovery.DiscoverySelectors.selectPackage
import org.junit.platform.launcher.TestExecutionListener
import org.junit.platform.launcher.TestIdentifier
import org.junit.platform.launcher.core.LauncherDiscoveryRequestBuilder
import org.junit.platform.launcher.core.LauncherFactory
import org.junit.platform.launcher.listeners.SummaryGeneratingListener

fun main(args: Array<String>) {
    val request = LauncherDiscoveryRequestBuilder.request().selectors(args.map { selectPackage(it) }).build()
    val summary = SummaryGeneratingListener()
    val printer = object : TestExecutionListener {
        override fun executionFinished(id: TestIdentifier, result: TestExecutionResult) {
            if (!id.isTest) return
            val ok = result.status == TestExecutionResult.Status.SUCCESSFUL
            println("${if (ok) "ok  " else "FAIL"} ${id.uniqueId.substringAfter("[class:").substringBefore("]").substringAfterLast('.')} > ${id.displayName}")
        }
    }
    LauncherFactory.create().execute(request, summary, printer)
    val s = summary.summary
    s.printFailuresTo(PrintWriter(System.out), 25)
    val failed = s.testsFailedCount + s.testsAbortedCount
    println("${s.testsSucceededCount} passed, $failed failed")
    exitProcess(if (failed == 0L && s.testsFoundCount > 0) 0 else 1)
}
