//! `-v` streams both sides' output as it comes, in bounded pieces: a script that writes
//! one 200 MB line does not make pairbench hold it. (Its own test binary: the memory
//! measured is that of this test's children only.)

mod common;

use common::Project;

#[test]
fn a_200_mb_line_is_streamed_in_pieces_and_never_held() {
    let p = Project::new();
    p.bash(
        "g/local/l",
        "head -c 200000000 /dev/zero | tr '\\0' x; echo; echo after",
    );
    p.bash("g/remote/r", "exit 0");
    let bin = assert_cmd::cargo::cargo_bin!("pairbench");
    // awk counts bytes and pieces, holding one printed line at a time.
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "'{}' run -v --progress never | awk '$1 == \"local\" {{ n += length($0); if ($3 == \"+\") c++ }} /\\| after$/ {{ a = 1 }} END {{ print n, c, a }}'",
            bin.display()
        ))
        .current_dir(p.path())
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let words: Vec<&str> = text.split_whitespace().collect();
    assert_eq!(
        words.len(),
        3,
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes: u64 = words[0].parse().unwrap();
    let pieces: u64 = words[1].parse().unwrap();
    assert!(bytes >= 200_000_000, "{text}");
    assert!(pieces >= 1000, "the line came in {pieces} pieces: {text}");
    assert_eq!(words[2], "1", "the line after it is shown whole: {text}");
    // The largest child (pairbench, head, tr, awk, sh) stayed far below the line's size.
    let usage =
        nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN).unwrap();
    let max_kib = usage.max_rss();
    assert!(max_kib < 100 * 1024, "peak resident memory {max_kib} KiB");
    // The whole line is in the pair's stdout file all the same.
    let len = std::fs::metadata(p.pair("g", "l_x_r").path().join("local/stdout"))
        .unwrap()
        .len();
    assert_eq!(len, 200_000_000 + 1 + 6);
}
