//! Reports drawn from a run's tree: for now the command that finds a stored run; tables,
//! plots and pages come with the report work (issue 4).

use std::path::Path;

/// Write every report file of a tag folder; returns warnings (never fails the run).
pub fn write_all(_tag_dir: &Path) -> Vec<String> {
    Vec::new()
}

/// `pairbench report [TAG]`.
pub fn command(results_dir: &Path, tag: &str, _groups_dir: &Path) -> anyhow::Result<i32> {
    let (_tag, dir) = crate::results::resolve_tag(results_dir, tag).map_err(anyhow::Error::msg)?;
    for w in write_all(&dir) {
        eprintln!("pairbench: warning: {w}");
    }
    Ok(0)
}
