//! The environment scripts get (SPEC §4): pairbench's own variables, mirage-bench's, and
//! the user's `[env]` and `--env`.

use std::path::Path;

/// What a script's environment is built from.
pub struct EnvInput<'a> {
    pub tag: &'a str,
    pub group: &'a str,
    /// `local` or `remote`.
    pub side: &'a str,
    /// The script's cwd on its machine.
    pub result_dir: &'a Path,
    pub local_paths: &'a crate::transport::GroupPaths,
    pub remote_paths: &'a crate::transport::GroupPaths,
    pub remote_host: &'a str,
    pub local_host: &'a str,
    pub remote_user: &'a str,
    pub remote_port: u16,
    pub user_env: &'a [(String, String)],
    /// For pairs: (pair name, local test, remote test, local side dir, remote side dir).
    pub pair: Option<(&'a str, &'a str, &'a str, &'a Path, &'a Path)>,
}

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// The variables, user's first so pairbench's own win.
pub fn build(i: &EnvInput) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = i.user_env.to_vec();
    let scripts = if i.side == "local" {
        &i.local_paths.scripts
    } else {
        &i.remote_paths.scripts
    };
    let mut put = |k: &str, v: String| env.push((k.to_string(), v));
    put("PAIRBENCH_TAG", i.tag.into());
    put("PAIRBENCH_GROUP", i.group.into());
    put("PAIRBENCH_SIDE", i.side.into());
    put("PAIRBENCH_RESULT_DIR", s(i.result_dir));
    put("PAIRBENCH_GROUP_DIR", s(scripts));
    put("PAIRBENCH_REMOTE_HOST", i.remote_host.into());
    put("PAIRBENCH_LOCAL_HOST", i.local_host.into());
    // mirage-bench's names.
    put("TEST", i.group.into());
    put("TEST_NAME", i.group.into());
    put("RESULTS_TAG", i.tag.into());
    put("REMOTE_HOST", i.remote_host.into());
    put("REMOTE_USER", i.remote_user.into());
    put("REMOTE_PORT", i.remote_port.to_string());
    put("LOCAL_ROOT_PATH", s(&i.local_paths.root));
    put("REMOTE_ROOT_PATH", s(&i.remote_paths.root));
    put("LOCAL_TEST_ROOT_PATH", s(&i.local_paths.scripts));
    put("REMOTE_TEST_ROOT_PATH", s(&i.remote_paths.scripts));
    put("LOCAL_RESULTS_ROOT_PATH", s(&i.local_paths.results));
    put("REMOTE_RESULTS_ROOT_PATH", s(&i.remote_paths.results));
    if let Some((pair, l, r, ldir, rdir)) = i.pair {
        put("PAIRBENCH_PAIR", pair.into());
        put("PAIRBENCH_LOCAL_TEST", l.into());
        put("PAIRBENCH_REMOTE_TEST", r.into());
        put("LOCAL_RESULTS_PATH", s(ldir));
        put("REMOTE_RESULTS_PATH", s(rdir));
    }
    env
}
