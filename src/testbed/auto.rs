//! `pairbench run --testbed [N]` (docs/testbed.md, "Automatic mode"): make the testbed,
//! run over its hosts (a pool, unless `--remote` names some of them), and remove it
//! again whatever the run's end — failed pairs, an error, Ctrl-C.

use super::{TestbedError, up};
use crate::config::{RunOptions, TestbedConf};

/// Up, `run(opts)` against the testbed's hosts, down; the run's exit status.
pub fn run_on_testbed<T>(
    mut opts: RunOptions,
    hosts: Option<usize>,
    conf: &TestbedConf,
    run: impl FnOnce(RunOptions) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let dir = super::Dir::new(opts.testbed_dir.clone());
    let plan = up::plan(conf, hosts, None)?;
    if dir.load()?.is_some() {
        return Err(TestbedError::Invalid(format!(
            "a testbed is already up in {}: run on it with --remote HOST, or remove it first with `pairbench testbed down`",
            dir.path.display()
        ))
        .into());
    }
    let t = std::time::Instant::now();
    up::up(&dir, &plan)?;
    let names: Vec<String> = plan.hosts.iter().map(|h| h.name.clone()).collect();
    eprintln!(
        "pairbench: testbed up in {:.2}s: {} on {}",
        t.elapsed().as_secs_f64(),
        names.join(", "),
        plan.subnet
    );
    for d in super::remote_defs(&dir) {
        opts.remote_defs.retain(|r| r.name != d.name);
        opts.remote_defs.push(d);
    }
    if opts.remotes.is_empty() || opts.remotes == ["local"] {
        opts.remotes = names;
    }
    let result = run(opts);
    let removed = up::down(&dir);
    match (result, removed) {
        (Ok(code), Ok(_)) => Ok(code),
        (Ok(_), Err(e)) => Err(anyhow::Error::from(e).context("the run ended, but the testbed")),
        (Err(e), _) => Err(e),
    }
}
