mod common;
use common::Project;

#[test]
fn a_new_group_runs_green() {
    let p = Project::new();
    p.run(&["new", "echo"]).expect_code(0);
    p.run(&["run", "--progress", "never"]).expect_code(0);
    assert_eq!(
        p.pair("echo", "echo_client_x_echo_server").status(),
        "SUCCESS"
    );
}
