//! Generates `include/mgkeepalive.h` from `src/ffi` with cbindgen, and from that header what the
//! PowerShell module must know about the ABI (`pwsh/MgKeepAlive/MgKeepAlive.Native.abi`: the
//! version, the status names, every function's C signature). Both are committed; each is rewritten
//! only when its content changes, and CI fails when a committed copy is stale (`.ci/check-header`).

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=src/ffi");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=pwsh/MgKeepAlive/MgKeepAlive.Native.abi");

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
    write_if_changed(&crate_dir.join("include").join("mgkeepalive.h"), &generated);
    let header = String::from_utf8(generated).expect("cbindgen writes UTF-8");
    let interop = powershell_interop(&header, &std::env::var("CARGO_PKG_VERSION").expect("cargo sets CARGO_PKG_VERSION"));
    write_if_changed(&crate_dir.join("pwsh").join("MgKeepAlive").join("MgKeepAlive.Native.abi"), interop.as_bytes());
}

fn write_if_changed(path: &std::path::Path, content: &[u8]) {
    if std::fs::read(path).ok().as_deref() != Some(content) {
        std::fs::create_dir_all(path.parent().expect("a generated file has a parent")).expect("can create its folder");
        std::fs::write(path, content).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    }
}

/// The C types the module's interop knows how to bind (Initialize-MgkaNative maps each to a .NET
/// type); an export using another type fails the build here, not at run time in PowerShell.
const INTEROP_TYPES: &[&str] = &[
    "MgkaStatus", "void", "const char *", "char *", "char **", "const uint8_t *", "const uint16_t *", "uintptr_t", "size_t", "uint32_t",
    "uint64_t", "uint32_t *", "uint64_t *",
];

/// The PowerShell data file describing the ABI: the library version it was generated from, the
/// MgkaStatus names indexed by value, and `name = 'return', 'parameter', ...` per function, in C
/// types. A data file (read with the PowerShell parser's SafeGetValue, no code runs).
fn powershell_interop(header: &str, version: &str) -> String {
    let mut statuses = Vec::new();
    for line in header.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("MGKA_STATUS_") {
            let (name, value) = rest.split_once(" = ").expect("status lines are NAME = value,");
            let value: usize = value.trim_end_matches(',').parse().expect("status values are numbers");
            let pascal: String = name
                .split('_')
                .map(|word| word[..1].to_string() + &word[1..].to_ascii_lowercase())
                .collect();
            assert_eq!(value, statuses.len(), "MgkaStatus values are dense from 0");
            statuses.push(pascal);
        }
    }
    // Declarations without comments and preprocessor lines, joined: one function per `;`.
    let code: String = header
        .lines()
        .filter(|l| !l.trim_start().starts_with("//") && !l.trim_start().starts_with('#') && !l.trim_start().starts_with('*') && !l.trim_start().starts_with("/*"))
        .collect::<Vec<_>>()
        .join(" ");
    let mut functions = Vec::new();
    for declaration in code.split(';') {
        let declaration = declaration.split_whitespace().collect::<Vec<_>>().join(" ");
        let Some(open) = declaration.find("mgka_") else { continue };
        let Some(paren) = declaration[open..].find('(').map(|p| p + open) else { continue };
        if declaration.starts_with("extern") {
            continue;
        }
        let returns = declaration[..open].trim().trim_start_matches('}').trim().to_string();
        let name = &declaration[open..paren];
        let inner = declaration[paren + 1..].trim_end().trim_end_matches(')');
        let mut types = vec![returns];
        if inner != "void" {
            for parameter in inner.split(',') {
                let parameter = parameter.trim();
                let split = parameter.rfind(|c: char| c == ' ' || c == '*').expect("parameters are named");
                types.push(parameter[..=split].trim().to_string());
            }
        }
        for t in &types {
            assert!(INTEROP_TYPES.contains(&t.as_str()), "{name}: the PowerShell interop cannot bind the C type '{t}' (build.rs INTEROP_TYPES)");
        }
        functions.push(format!(
            "        {name} = {}",
            types.iter().map(|t| format!("'{t}'")).collect::<Vec<_>>().join(", ")
        ));
    }
    assert!(!functions.is_empty(), "no mgka_ functions found in the header");
    format!(
        "# Generated by build.rs from include/mgkeepalive.h: do not edit. .ci/check-header fails when it is stale.\n\
         # What MgKeepAlive's interop binds (Initialize-MgkaNative), in PowerShell data syntax (a .psd1 that is not\n\
         # named one: packaging would take it for a module manifest): per function its C return and parameter types.\n\
         @{{\n    Version = '{version}'\n    StatusNames = @({})\n    Functions = @{{\n{}\n    }}\n}}\n",
        statuses.iter().map(|s| format!("'{s}'")).collect::<Vec<_>>().join(", "),
        functions.join("\n")
    )
}
