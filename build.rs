//! Generates `include/mgkeepalive.h` from `src/ffi` with cbindgen. The header is committed; it is
//! rewritten only when its content changes, and CI fails when the committed copy is stale.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=src/ffi");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-changed=build.rs");

    let crate_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).expect("cbindgen.toml is valid");
    let header = match cbindgen::Builder::new().with_crate(&crate_dir).with_config(config).generate() {
        Ok(bindings) => bindings,
        Err(e) => {
            // A syntax error is reported better by rustc itself; don't fail the build twice.
            println!("cargo:warning=cbindgen could not generate the header: {e}");
            return;
        }
    };
    let mut generated = Vec::new();
    header.write(&mut generated);
    let path = crate_dir.join("include").join("mgkeepalive.h");
    if std::fs::read(&path).ok().as_deref() != Some(generated.as_slice()) {
        std::fs::create_dir_all(path.parent().expect("include/ has a parent")).expect("can create include/");
        std::fs::write(&path, generated).expect("can write include/mgkeepalive.h");
    }
}
