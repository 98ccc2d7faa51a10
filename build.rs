//! Build information for `GET public/version`: the commit (`git_sha`) and its date
//! (`build_date`), read from the local git checkout, never from the network. The commit date,
//! not the wall clock, so that building the same commit twice gives the same binary. A source
//! tree without git (a crate tarball) keeps the defaults `server::version` falls back to.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let output = Command::new("git").args(args).output().ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8(output.stdout).ok()?.trim().to_owned();
    (!text.is_empty()).then_some(text)
}

fn main() {
    // A new commit or a checkout moves HEAD (or the ref it points to).
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs");
    println!("cargo:rerun-if-changed=.git/packed-refs");
    if let Some(sha) = git(&["rev-parse", "--short=7", "HEAD"]) {
        println!("cargo:rustc-env=BARONG_GIT_SHA={sha}");
    }
    // `%cI` is strict ISO 8601 (`2026-12-02T09:03:35+00:00`); Barong's has milliseconds.
    if let Some(date) = git(&["log", "-1", "--format=%cI"])
        && date.len() > 19
        && date.is_char_boundary(19)
    {
        let (time, zone) = date.split_at(19);
        println!("cargo:rustc-env=BARONG_BUILD_DATE={time}.000{zone}");
    }
}
