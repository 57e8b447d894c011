//! The configuration reference (docs/configuration.md) names every key pairbench.toml
//! and group.toml accept: the lists are taken from pairbench's own answers to an
//! unknown key, so a key added to the code and not to the page fails here.

mod common;

use common::Project;

fn page() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/configuration.md"
    ))
    .unwrap()
}

/// The keys an error names: the words in backticks after "expected one of", or the list
/// in parentheses after `marker`.
fn keys_in(err: &str, marker: &str) -> Vec<String> {
    let tail = err
        .split_once(marker)
        .unwrap_or_else(|| panic!("'{marker}' in {err}"))
        .1;
    let tail = tail.split(')').next().unwrap();
    tail.split(',')
        .map(|k| {
            k.trim()
                .trim_matches('`')
                .trim_matches(['[', ']'])
                .to_string()
        })
        .filter(|k| !k.is_empty())
        .collect()
}

#[test]
fn every_key_pairbench_accepts_is_in_the_configuration_reference() {
    let p = Project::new();
    p.bash("g/local/l", "true").bash("g/remote/r", "true");
    let page = page();
    let mut checked = 0;
    for toml in [
        "zzz = 1\n",
        "[[remote]]\nname = \"a\"\nhost = \"h\"\nzzz = 1\n",
        "[testbed]\nzzz = 1\n",
        "[[testbed.host]]\nname = \"a\"\nzzz = 1\n",
        "[[testbed.host]]\nname = \"a\"\nlink = { zzz = 1 }\n",
    ] {
        std::fs::write(p.path().join("pairbench.toml"), toml).unwrap();
        let run = p.run(&["run", "-n"]);
        run.expect_code(2);
        for k in keys_in(&run.stderr(), "expected one of") {
            assert!(
                page.contains(&format!("`{k}`")),
                "'{k}' ({toml:?}) is not documented"
            );
            checked += 1;
        }
    }
    std::fs::remove_file(p.path().join("pairbench.toml")).unwrap();
    for (toml, marker) in [
        ("zzz = 1\n", "known keys: "),
        ("[check]\nzzz = 1\n", "[check] ("),
        (
            "[[check.normalize]]\nregex = \"a\"\nzzz = \"b\"\n",
            "a rule (",
        ),
    ] {
        std::fs::write(p.path().join("groups/g/group.toml"), toml).unwrap();
        let run = p.run(&["run", "-n"]);
        run.expect_code(2);
        for k in keys_in(&run.stderr(), marker) {
            let named = page.contains(&format!("`{k}`")) || page.contains(&format!("`[{k}]`"));
            assert!(named, "'{k}' ({toml:?}) is not documented");
            checked += 1;
        }
    }
    assert!(checked > 40, "{checked} keys");
}

#[test]
fn the_manual_index_links_every_page() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/docs");
    let index = std::fs::read_to_string(format!("{dir}/README.md")).unwrap();
    for e in std::fs::read_dir(dir).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        if name.ends_with(".md") && name != "README.md" {
            assert!(
                index.contains(&format!("({name})")),
                "{name} is not in docs/README.md"
            );
        }
    }
}
