use super::*;
use std::time::Duration;

fn fields(publisher: &str) -> NameFields<'_> {
    NameFields {
        room: "interviews",
        publisher,
        start: SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_000_000),
        has_video: true,
        has_audio: true,
        extension: "webm",
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("naming-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn default_template_names_everything() {
    assert_eq!(
        render_name(DEFAULT_TEMPLATE, &fields("cam")).unwrap(),
        Path::new("interviews_cam_20261118T110640Z_av.webm")
    );
}

#[test]
fn taken_names_get_a_suffix_and_are_never_truncated() {
    let dir = temp_dir("suffix");
    let (first, _lock) = create_recording(&dir, DEFAULT_TEMPLATE, &fields("cam")).unwrap();
    std::fs::write(&first, b"first recording").unwrap();
    let (second, _) = create_recording(&dir, DEFAULT_TEMPLATE, &fields("cam")).unwrap();
    let (third, _) = create_recording(&dir, DEFAULT_TEMPLATE, &fields("cam")).unwrap();
    assert!(
        second.to_string_lossy().ends_with("_av-1.webm"),
        "{second:?}"
    );
    assert!(third.to_string_lossy().ends_with("_av-2.webm"), "{third:?}");
    assert_eq!(std::fs::read(&first).unwrap(), b"first recording");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn many_recorders_at_once_get_distinct_files() {
    let dir = temp_dir("race");
    let paths: Vec<PathBuf> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                scope.spawn(|| {
                    create_recording(&dir, DEFAULT_TEMPLATE, &fields("cam"))
                        .unwrap()
                        .0
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let distinct: std::collections::HashSet<_> = paths.iter().collect();
    assert_eq!(distinct.len(), 8, "{paths:?}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn templates_are_checked() {
    assert!(validate(DEFAULT_TEMPLATE).is_ok());
    assert!(validate("{room}/{publisher}/{start}.{ext}").is_ok());
    let err = |t: &str| validate(t).unwrap_err().to_string();
    assert!(err("{publisher}-{start}-{colour}.{ext}").contains("unknown field {colour}"));
    assert!(err("{room}.{ext}").contains("must contain {publisher} and {start}"));
    assert!(err("{publisher}{start").contains("unclosed"));
    assert!(err("/tmp/{publisher}_{start}.{ext}").contains("absolute"));
    assert!(err("../{publisher}_{start}.{ext}").contains("\"..\""));
    assert!(err("a/../../{publisher}_{start}.{ext}").contains("\"..\""));
    assert!(err("{publisher}_{start}/").contains("ends with /"));
}

#[test]
fn dot_publishers_never_become_empty_or_climb() {
    assert_eq!(sanitize("."), "_");
    assert_eq!(sanitize("..."), "___");
    assert_eq!(sanitize(""), "_");
    assert_eq!(sanitize(".hidden"), "_hidden");
    assert_eq!(sanitize("../../etc"), "__.._etc");
    assert_eq!(sanitize("cam-1.a_b"), "cam-1.a_b");
    for publisher in [".", "..", "...", "/", "../..", ""] {
        let name = render_name("{publisher}/{start}.{ext}", &fields(publisher)).unwrap();
        let first = name.components().next().unwrap();
        assert!(
            matches!(first, Component::Normal(c) if !c.is_empty() && c != ".."),
            "{publisher:?} → {name:?}"
        );
    }
}

#[test]
fn a_publisher_directory_stays_inside_dir() {
    let dir = temp_dir("inside");
    let template = "{publisher}/{start}.{ext}";
    for publisher in [".", "...", "..", "../x"] {
        let (path, _) = create_recording(&dir, template, &fields(publisher)).unwrap();
        let real = path.canonicalize().unwrap();
        assert!(
            real.starts_with(dir.canonicalize().unwrap()),
            "{publisher:?} → {real:?}"
        );
        assert_ne!(
            real.parent().unwrap(),
            dir.canonicalize().unwrap().parent().unwrap()
        );
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_symbolic_link_out_of_dir_is_refused() {
    let dir = temp_dir("symlink");
    let outside = temp_dir("symlink-target");
    std::os::unix::fs::symlink(&outside, dir.join("cam")).unwrap();
    let err = create_recording(&dir, "{publisher}/{start}.{ext}", &fields("cam")).unwrap_err();
    assert!(matches!(err, NamingError::Outside { .. }), "{err}");
    assert!(err.to_string().contains("outside"), "{err}");
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
    std::fs::remove_dir_all(dir).unwrap();
    std::fs::remove_dir_all(outside).unwrap();
}

#[test]
fn field_values_are_not_substituted_twice() {
    let mut f = fields("{start}");
    f.room = "{publisher}";
    let name = render_name(DEFAULT_TEMPLATE, &f).unwrap();
    assert_eq!(
        name,
        Path::new("_publisher___start__20261118T110640Z_av.webm")
    );
}
