//! The `pairbench` executable: the command line, or a helper when called by a helper's name.

fn main() -> pairbench::exit_status::ExitStatus {
    one_heap();
    let args: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let called_as = args
        .first()
        .map(std::path::Path::new)
        .and_then(|p| p.file_name())
        .and_then(|n| n.to_str())
        .unwrap_or("pairbench")
        .to_string();
    if pairbench::helpers::NAMES.contains(&called_as.as_str()) {
        pairbench::exit_status::ExitStatus::from_code(pairbench::helpers::main(
            &called_as,
            &args[1..],
        ))
    } else if pairbench::testbed::command::HELPERS.contains(&called_as.as_str()) {
        pairbench::exit_status::ExitStatus::from_code(pairbench::testbed::command::helper(
            &called_as,
            &args[1..],
        ))
    } else {
        pairbench::cli::main(args)
    }
}

/// One malloc arena for every thread. glibc gives each thread that allocates its own
/// arena, and memory freed in one stays there: a report drawn on rayon's threads held
/// 25 MB more at 10,000 pairs (106 against 81 MB), for no gain in speed here (its
/// threads seldom allocate at once; docs/results.md, "Large runs").
fn one_heap() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only sets a tunable of the allocator, before any thread starts.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}
