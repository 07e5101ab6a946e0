//! A `remote_path` that climbs out of its target (`/../x`, `../x`, `/a/../../x`)
//! would put the mirror beside the target instead of below it: refused at
//! start, by `--check`, by `add --remote-path` and by `reload`, naming the key.

use std::fs;

use inosync_tests::{Fixture, refused_start};

use super::names;

const CLIMBING: &[&str] = &["/../x", "../x", "/a/../../x"];

#[test]
fn a_remote_path_that_climbs_out_of_its_target_is_refused_everywhere() {
    let fx = Fixture::new();
    let config = fx.path("climb.toml");
    let socket = fx.path("climb.sock");
    for remote_path in CLIMBING {
        fs::write(
            &config,
            format!(
                "[[watch]]\npath = \"{}\"\nremote_path = \"{remote_path}\"\ntargets = [\"{}/\"]\n",
                fx.src.display(),
                fx.dst.display()
            ),
        )
        .unwrap();
        for check in [true, false] {
            let mut args = vec!["-c".as_ref(), config.as_os_str()];
            if check {
                args.push("--check".as_ref());
            } else {
                args.extend(["-s".as_ref(), socket.as_os_str()]);
            }
            let stderr = refused_start(&args);
            assert!(
                stderr.contains("remote_path") && stderr.contains(remote_path),
                "{remote_path} (check {check}): {stderr}"
            );
        }
    }
    // The .py format names its own key.
    let py = fx.path("climb.py");
    fs::write(
        &py,
        format!(
            "wpaths = [\"{}\"]\nrpaths = [\"/../x\"]\nrnodes = [\"{}/\"]\n",
            fx.src.display(),
            fx.dst.display()
        ),
    )
    .unwrap();
    let stderr = refused_start(&["--check".as_ref(), "-c".as_ref(), py.as_os_str()]);
    assert!(stderr.contains("rpaths"), "{stderr}");

    // At runtime: add --remote-path and reload.
    let daemon = fx.start_toml(&fx.simple_config(""));
    daemon.wait_idle();
    let other = fx.path("other");
    let other_dst = fx.path("other-dst");
    fs::create_dir(&other).unwrap();
    fs::create_dir(&other_dst).unwrap();
    fs::write(other.join("f"), "other").unwrap();
    for remote_path in CLIMBING {
        let stderr = daemon.ctl_fails(
            1,
            &[
                "add",
                &other.display().to_string(),
                "--target",
                &format!("{}/", other_dst.display()),
                "--remote-path",
                remote_path,
            ],
        );
        assert!(stderr.contains("remote-path"), "{remote_path}: {stderr}");
    }
    let main = fx.path("inosync.toml");
    let mut text = fs::read_to_string(&main).unwrap();
    text.push_str(&format!(
        "[[watch]]\npath = \"{}\"\nremote_path = \"/../x\"\ntargets = [\"{}/\"]\n",
        other.display(),
        other_dst.display()
    ));
    fs::write(&main, text).unwrap();
    let stderr = daemon.ctl_fails(1, &["reload"]);
    assert!(stderr.contains("remote_path"), "{stderr}");
    assert_eq!(daemon.status()["watches"].as_array().map(Vec::len), Some(1));
    // Nothing was made beside the targets.
    assert_eq!(
        names(fx.dir.path())
            .iter()
            .filter(|n| n.as_str() == "x")
            .count(),
        0
    );
    assert!(names(&other_dst).is_empty(), "{:?}", names(&other_dst));
}
