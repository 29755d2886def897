// The Outbox Android library as a stand-alone Gradle build (one module: this directory).
// Apps depend on the published AAR (dev.outbox:outbox-android) or include this build with
// `includeBuild("path/to/outbox/android")` in their settings.
pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
}

dependencyResolutionManagement {
    repositoriesMode.set(RepositoriesMode.FAIL_ON_PROJECT_REPOS)
    repositories {
        google()
        mavenCentral()
    }
}

rootProject.name = "outbox-android"
