// swift-tools-version:5.9
// Test package for the generated Swift bindings, for `swift test` on a Mac against the
// host build of the Rust library (see docs/bindings.md). Apps use the root Package.swift.
import PackageDescription

let package = Package(
    name: "OutboxBindings",
    platforms: [.macOS(.v13), .iOS(.v15)],
    products: [.library(name: "OutboxFFI", targets: ["OutboxFFI"])],
    targets: [
        // The C declarations of the Rust library (generated header + module map).
        .target(name: "outbox_ffiFFI", path: "Sources/outbox_ffiFFI"),
        // The generated Swift API, linked against target/debug/liboutbox_ffi.dylib.
        .target(
            name: "OutboxFFI",
            dependencies: ["outbox_ffiFFI"],
            path: "Sources/OutboxFFI",
            linkerSettings: [
                .unsafeFlags(["-L../../target/debug", "-Xlinker", "-rpath", "-Xlinker", "../../target/debug"]),
                .linkedLibrary("outbox_ffi"),
            ]
        ),
        .testTarget(name: "OutboxFFITests", dependencies: ["OutboxFFI"], path: "Tests/OutboxFFITests"),
    ]
)
