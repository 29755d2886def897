// JVM COMPILE STUB — not shipped. androidx.lifecycle.ProcessLifecycleOwner (lifecycle-process),
// with a test hook to move the process between CREATED (background) and STARTED (foreground).
package androidx.lifecycle

/** Stub of `androidx.lifecycle.ProcessLifecycleOwner`. */
class ProcessLifecycleOwner private constructor() : LifecycleOwner {
    private val registry = StubRegistry(this)

    override val lifecycle: Lifecycle
        get() = registry

    /** Test hook: moves the process lifecycle to `state`, dispatching onStart/onStop. */
    fun testMoveTo(state: Lifecycle.State) = registry.moveTo(state)

    /** Test hook: how many observers are registered. */
    val testObserverCount: Int
        get() = registry.observers.size

    private class StubRegistry(private val owner: LifecycleOwner) : Lifecycle() {
        val observers = mutableListOf<LifecycleObserver>()

        @Volatile
        override var currentState: State = State.CREATED

        override fun addObserver(observer: LifecycleObserver) {
            observers += observer
            if (currentState.isAtLeast(State.STARTED)) (observer as? DefaultLifecycleObserver)?.onStart(owner)
        }

        override fun removeObserver(observer: LifecycleObserver) {
            observers -= observer
        }

        fun moveTo(state: State) {
            val wasStarted = currentState.isAtLeast(State.STARTED)
            currentState = state
            val isStarted = state.isAtLeast(State.STARTED)
            if (wasStarted == isStarted) return
            for (o in observers.toList()) {
                val d = o as? DefaultLifecycleObserver ?: continue
                if (isStarted) d.onStart(owner) else d.onStop(owner)
            }
        }
    }

    companion object {
        private val instance = ProcessLifecycleOwner()

        /** Real: `ProcessLifecycleOwner.get()`. */
        @JvmStatic
        fun get(): ProcessLifecycleOwner = instance
    }
}
