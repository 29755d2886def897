// swift-tools-version:5.9
// Outbox for iOS as a Swift Package: `.package(url: "https://github.com/outbox-sdk/outbox", from: "<version>")`,
// product "Outbox". Three targets:
//   OutboxFFIRust  the Rust engine as an XCFramework (static libraries + the C module
//                  `outbox_ffiFFI`), built by scripts/build-ios.sh
//   OutboxFFI      the UniFFI-generated Swift API, compiled from bindings/swift/Sources/OutboxFFI
//                  where it is checked in (a target path, not a copy or a symlink)
//   Outbox         the platform adapters in ios/Sources/Outbox (re-exports OutboxFFI)
import Foundation
import PackageDescription

// Release builds: the zipped XCFramework attached to the GitHub release `releaseTag`.
// scripts/build-ios.sh prints both values; set them on the release commit (docs/ios.md).
let releaseTag = ""
let releaseChecksum = ""
let releaseURL = "https://github.com/outbox-sdk/outbox/releases/download/\(releaseTag)/OutboxFFI.xcframework.zip"

// Development: the XCFramework scripts/build-ios.sh leaves in build/ios. Used while no release
// checksum is set, or when OUTBOX_LOCAL_XCFRAMEWORK=1 is in the environment of Xcode /
// `swift build` (e.g. to test a local engine change against a released tag).
let useLocalXCFramework = releaseChecksum.isEmpty
    || ProcessInfo.processInfo.environment["OUTBOX_LOCAL_XCFRAMEWORK"] == "1"

let engine: Target = useLocalXCFramework
    ? .binaryTarget(name: "OutboxFFIRust", path: "build/ios/OutboxFFI.xcframework")
    : .binaryTarget(name: "OutboxFFIRust", url: releaseURL, checksum: releaseChecksum)

let package = Package(
    name: "Outbox",
    platforms: [.iOS(.v15)],
    products: [
        .library(name: "Outbox", targets: ["Outbox"]),
    ],
    targets: [
        engine,
        .target(
            name: "OutboxFFI",
            dependencies: ["OutboxFFIRust"],
            path: "bindings/swift/Sources/OutboxFFI"
        ),
        .target(
            name: "Outbox",
            dependencies: ["OutboxFFI"],
            path: "ios/Sources/Outbox"
        ),
        .testTarget(
            name: "OutboxTests",
            dependencies: ["Outbox"],
            path: "ios/Tests/OutboxTests"
        ),
    ]
)
