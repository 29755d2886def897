// swift-tools-version:5.9
// Linux stand-in for the root Package.swift, used only by scripts/suites/swift.sh. It is copied,
// with bindings/swift and ios/, into a scratch package inside the Swift chroot:
//
//   <package>/Package.swift                 this file
//   <package>/lib/liboutbox_ffi.so          the cargo build of rust/outbox-ffi
//   <package>/bindings/swift/{Sources,Tests}
//   <package>/ios/{Sources,Tests}
//
// The targets are the root manifest's, except that the engine is the C module `outbox_ffiFFI`
// (generated header + module map) linked against the shared library instead of the
// XCFramework binary target, which SwiftPM cannot use on Linux. Both XCTest targets run here:
// the bindings' scenarios against the real library and server, and the iOS adapters' tests.
import PackageDescription

let libDir = "\(Context.packageDirectory)/lib"

let package = Package(
    name: "OutboxLinux",
    targets: [
        .target(name: "outbox_ffiFFI", path: "bindings/swift/Sources/outbox_ffiFFI"),
        .target(
            name: "OutboxFFI",
            dependencies: ["outbox_ffiFFI"],
            path: "bindings/swift/Sources/OutboxFFI",
            linkerSettings: [
                .unsafeFlags(["-L\(libDir)", "-Xlinker", "-rpath", "-Xlinker", libDir]),
                .linkedLibrary("outbox_ffi"),
            ]
        ),
        .target(name: "Outbox", dependencies: ["OutboxFFI"], path: "ios/Sources/Outbox"),
        .testTarget(name: "OutboxFFITests", dependencies: ["OutboxFFI"], path: "bindings/swift/Tests/OutboxFFITests"),
        .testTarget(name: "OutboxTests", dependencies: ["Outbox"], path: "ios/Tests/OutboxTests"),
    ]
)
