//! Build script: gives the binary a RUNPATH to libtorch's `lib` folder, so that
//! `target/release/archsearch` starts without LD_LIBRARY_PATH (which still overrides it).
fn main() {
    // torch-sys (`links = "tch"`) reports the folder it linked against.
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        // Resolve the `.libtorch` link so the binary does not depend on the clone's location.
        let lib = std::fs::canonicalize(&lib).unwrap_or_else(|_| lib.into());
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    }
}
