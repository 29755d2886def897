// JVM COMPILE STUB — not shipped. androidx.lifecycle (lifecycle-common 2.6+), only the members
// dev.outbox.android uses. Observers get the current state on addObserver, as LifecycleRegistry
// does; members marked "test hook" do not exist in the library.
package androidx.lifecycle

/** Stub of `androidx.lifecycle.LifecycleObserver`. */
interface LifecycleObserver

/** Stub of `androidx.lifecycle.DefaultLifecycleObserver` (only the callbacks used). */
interface DefaultLifecycleObserver : LifecycleObserver {
    /** Real: `onStart(LifecycleOwner)`. */
    fun onStart(owner: LifecycleOwner) {}

    /** Real: `onStop(LifecycleOwner)`. */
    fun onStop(owner: LifecycleOwner) {}
}

/** Stub of `androidx.lifecycle.LifecycleOwner`. */
interface LifecycleOwner {
    /** Real: `LifecycleOwner.lifecycle`. */
    val lifecycle: Lifecycle
}

/** Stub of `androidx.lifecycle.Lifecycle`, with the dispatching of a LifecycleRegistry. */
abstract class Lifecycle {
    /** Real: `Lifecycle.currentState`. */
    abstract val currentState: State

    /** Real: `Lifecycle.addObserver`. */
    abstract fun addObserver(observer: LifecycleObserver)

    /** Real: `Lifecycle.removeObserver`. */
    abstract fun removeObserver(observer: LifecycleObserver)

    /** Stub of `Lifecycle.State`. */
    enum class State {
        DESTROYED, INITIALIZED, CREATED, STARTED, RESUMED;

        /** Real: `State.isAtLeast`. */
        fun isAtLeast(state: State): Boolean = compareTo(state) >= 0
    }
}
