//! `uniffi-bindgen` for this workspace: `uniffi-bindgen generate --library <lib> --language kotlin|swift ...`.
//! Built with the workspace (`cargo build --workspace`) and called by path, so that it
//! shares the feature-unified uniffi build (see docs/bindings.md).

fn main() {
    uniffi::uniffi_bindgen_main()
}
