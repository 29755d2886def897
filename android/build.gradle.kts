// dev.outbox:outbox-android: the generated Kotlin bindings (bindings/kotlin, used in place),
// the Rust library per ABI (src/main/jniLibs, built by scripts/build-android.sh), JNA and the
// platform adapters in src/main/kotlin. `./gradlew publishToMavenLocal` publishes the AAR.
import org.jetbrains.kotlin.gradle.dsl.JvmTarget

plugins {
    id("com.android.library") version "8.7.3"
    id("org.jetbrains.kotlin.android") version "2.1.0"
    `maven-publish`
}

group = "dev.outbox"
version = providers.gradleProperty("outboxVersion").get()

/** ABIs scripts/build-android.sh produces; the AAR must carry all of them. */
val outboxAbis = listOf("arm64-v8a", "armeabi-v7a", "x86_64")

android {
    namespace = "dev.outbox.android"
    compileSdk = 35

    defaultConfig {
        minSdk = 24
        consumerProguardFiles("consumer-rules.pro")
    }

    sourceSets {
        getByName("main") {
            // The generated bindings are checked in under bindings/kotlin and compiled from
            // there (not copied). Only the uniffi/ tree: bindings/kotlin/tests are JVM tests.
            kotlin.srcDirs("src/main/kotlin", "../bindings/kotlin/uniffi")
            jniLibs.srcDirs("src/main/jniLibs")
        }
    }

    buildTypes {
        release {
            isMinifyEnabled = false // a library: apps shrink, with consumer-rules.pro
        }
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }

    packaging {
        jniLibs {
            // Already stripped by scripts/build-android.sh; keep the .dynsym JNA looks up.
            keepDebugSymbols += "**/liboutbox_ffi.so"
        }
    }

    publishing {
        singleVariant("release") {
            withSourcesJar()
        }
    }
}

kotlin {
    compilerOptions {
        jvmTarget.set(JvmTarget.JVM_17)
    }
}

dependencies {
    // JNA as an AAR: it carries libjnidispatch.so for every Android ABI (the jar does not).
    api("net.java.dev.jna:jna:5.13.0@aar")
    api("org.jetbrains.kotlinx:kotlinx-coroutines-core:1.9.0")
    api("androidx.lifecycle:lifecycle-process:2.8.7")
    api("androidx.work:work-runtime-ktx:2.10.0")
}

// Fail before compiling, with the fix, when the native libraries were not built.
val checkOutboxJniLibs by tasks.registering {
    description = "Checks that src/main/jniLibs holds liboutbox_ffi.so for every ABI."
    val libs = outboxAbis.map { layout.projectDirectory.file("src/main/jniLibs/$it/liboutbox_ffi.so").asFile }
    doLast {
        val missing = libs.filterNot { it.isFile }
        if (missing.isNotEmpty()) {
            throw GradleException(
                "missing native libraries:\n" + missing.joinToString("\n") { "  $it" } +
                    "\nbuild them with ./scripts/build-android.sh from the repository root (see docs/android.md)",
            )
        }
    }
}
tasks.named("preBuild") { dependsOn(checkOutboxJniLibs) }

publishing {
    publications {
        register<MavenPublication>("release") {
            groupId = "dev.outbox"
            artifactId = "outbox-android"
            version = project.version.toString()
            afterEvaluate { from(components["release"]) }
            pom {
                name.set("Outbox for Android")
                description.set("Offline-first write queue for Android: durable SQLite outbox, exactly-once sync, platform adapters.")
                licenses {
                    license {
                        name.set("MPL-2.0")
                        url.set("https://www.mozilla.org/en-US/MPL/2.0/")
                    }
                }
            }
        }
    }
}
