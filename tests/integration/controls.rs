//! Operator controls (issue 18): shell completions and the man page generated from the clap
//! definitions, identifier naming of MySQL sources, and the job-wide rate cap.

use crate::support::{assert_success, Howdah};

/// Every user-facing subcommand, as a completion script and the man page must name them.
const SUBCOMMANDS: &[&str] = &[
    "copy",
    "status",
    "verify",
    "demo",
    "plan",
    "cutover",
    "abort",
    "check-queries",
    "completions",
];

#[test]
fn completion_scripts_name_every_subcommand() {
    for shell in ["bash", "zsh", "fish"] {
        let out = Howdah::new("completions").args([shell]).run();
        assert_success(&out, &format!("completions {shell}"));
        let script = String::from_utf8_lossy(&out.stdout);
        for sub in SUBCOMMANDS {
            assert!(
                script.contains(sub),
                "the {shell} completion script does not name `{sub}`"
            );
        }
        // Flags of a subcommand complete too.
        assert!(script.contains("max-rejects"), "{shell}: no --max-rejects");
        // The hidden man page generator is not offered.
        assert!(!script.contains("howdah__man"), "{shell}: offers the hidden `man`");
    }
    // bash can load it.
    let out = Howdah::new("completions").args(["bash"]).run();
    let dir = std::env::temp_dir().join(format!("howdah-compl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("howdah.bash");
    std::fs::write(&file, &out.stdout).unwrap();
    let loaded = std::process::Command::new("bash")
        .args(["-c", &format!("source {} && complete -p howdah", file.display())])
        .output()
        .unwrap();
    assert!(
        loaded.status.success(),
        "bash could not load the script: {}",
        String::from_utf8_lossy(&loaded.stderr)
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn man_page_renders() {
    let out = Howdah::new("man").run();
    assert_success(&out, "man");
    // roff escapes a hyphen as `\-`.
    let roff = String::from_utf8_lossy(&out.stdout).replace("\\-", "-");
    assert!(roff.starts_with(".ie") || roff.contains(".TH howdah 1"), "not roff: {roff:.200}");
    for sub in SUBCOMMANDS {
        assert!(roff.contains(sub), "the man page does not name `{sub}`");
    }
    // One page per subcommand with --dir.
    let dir = std::env::temp_dir().join(format!("howdah-man-{}", std::process::id()));
    let out = Howdah::new("man").args(["--dir", dir.to_str().unwrap()]).run();
    assert_success(&out, "man --dir");
    for page in ["howdah.1", "howdah-copy.1", "howdah-status.1", "howdah-completions.1"] {
        assert!(dir.join(page).exists(), "man --dir wrote no {page}");
    }
    // Rendered by groff when the machine has it: the text shows the flags of `copy`.
    let groff = std::process::Command::new("groff")
        .args(["-man", "-Tascii", "-P-cbou"])
        .arg(dir.join("howdah-copy.1"))
        .output();
    if let Ok(g) = groff {
        assert!(g.status.success(), "groff failed: {}", String::from_utf8_lossy(&g.stderr));
        let text = String::from_utf8_lossy(&g.stdout);
        assert!(text.contains("--max-rejects"), "rendered page lacks --max-rejects: {text:.400}");
    }
    std::fs::remove_dir_all(&dir).ok();
}
