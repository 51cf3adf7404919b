fn main() {
    gst_plugin_version_helper::info();
    rerun_when_the_version_changes();
}

/// The plugin's version carries the commit id and its date
/// (gst-plugin-version-helper), read when this script runs. Cargo reruns
/// it when the files named here change; release builds also when git's
/// HEAD moves, so that a release shows the commit it was built from
/// (debug builds do not, sparing a rebuild of every plugin at each
/// commit). Naming files replaces cargo's default of the whole package,
/// which pkg-config's `rerun-if-env-changed` lines would cancel anyway.
fn rerun_when_the_version_changes() {
    for path in ["src", "Cargo.toml", "build.rs"] {
        println!("cargo:rerun-if-changed={path}");
    }
    if std::env::var("PROFILE").as_deref() != Ok("release") {
        return;
    }
    let output = std::process::Command::new("git")
        .args(["rev-parse", "--path-format=absolute"])
        .args(["--git-path", "logs/HEAD", "--git-path", "HEAD"])
        .output();
    // Not a git checkout (a release tarball): nothing moves.
    if let Ok(output) = output
        && output.status.success()
    {
        for path in String::from_utf8_lossy(&output.stdout).lines() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
}
