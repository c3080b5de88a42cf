//! Bad input gives a clear message and no panic: malformed rules, a truncated EVTX
//! file, non-UTF-8 lines, a 100 MB single JSON line.

use std::path::{Path, PathBuf};

use koban_parse::Reader;
use koban_sigma::{load_str, CompileOptions};

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("koban-bad-input-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join(name)
}

fn read(path: &Path) -> (usize, Vec<String>) {
    let reader = Reader::new().expect("embedded map");
    let mut records = 0;
    let mut errors = Vec::new();
    reader.read_file(path, &mut |_| records += 1, &mut |e| {
        errors.push(e.to_string())
    });
    (records, errors)
}

#[test]
fn malformed_rules_name_file_line_and_reason() {
    let text = "title: broken\nlogsource: {product: windows}\ndetection:\n  sel:\n    Image|endswith: x\n  condition: sel and (\n";
    let r = load_str(
        text,
        Path::new("rules/broken.yml"),
        &CompileOptions::default(),
    );
    assert_eq!(r.errors.len(), 1);
    let msg = r.errors[0].to_string();
    assert!(msg.starts_with("rules/broken.yml:6"), "{msg}");
    assert!(msg.contains("condition"), "{msg}");
    let r = load_str(
        "title: [unclosed\n",
        Path::new("y.yml"),
        &CompileOptions::default(),
    );
    assert!(
        r.errors[0].to_string().contains("YAML syntax"),
        "{}",
        r.errors[0]
    );
}

#[test]
fn truncated_evtx_reports_and_keeps_what_it_can() {
    let sample = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/windows/evtx/evtx_attack_samples/Execution/Sysmon_Exec_CompiledHTML.evtx");
    let Ok(bytes) = std::fs::read(&sample) else {
        eprintln!("shared data not found; truncated EVTX test skipped");
        return;
    };
    for cut in [100, 4096, 4096 + 512, bytes.len() / 2] {
        let path = temp(&format!("cut-{cut}.evtx"));
        std::fs::write(&path, &bytes[..cut.min(bytes.len())]).expect("write");
        let (_records, errors) = read(&path);
        assert!(
            !errors.is_empty(),
            "a file cut at {cut} bytes must be reported"
        );
        assert!(
            errors.iter().all(|e| e.contains("cut-")),
            "errors name the file: {errors:?}"
        );
    }
}

#[test]
fn non_utf8_json_line_is_reported_and_the_rest_read() {
    let path = temp("bad-utf8.json");
    std::fs::write(
        &path,
        b"{\"a\":\"ok\"}\n{\"a\":\"\xff\xfe\"}\n{\"a\":\"ok again\"}\n",
    )
    .expect("write");
    let (records, errors) = read(&path);
    assert_eq!(records, 2);
    assert_eq!(errors.len(), 1);
    assert!(errors[0].contains("record 1"), "{errors:?}");
}

#[test]
fn hundred_megabyte_line_is_refused_with_a_reason() {
    let path = temp("huge.json");
    let mut bytes = Vec::with_capacity(100 * 1024 * 1024 + 64);
    bytes.extend_from_slice(b"{\"CommandLine\":\"");
    bytes.resize(100 * 1024 * 1024, b'A');
    bytes.extend_from_slice(b"\"}\n{\"CommandLine\":\"after\"}\n");
    std::fs::write(&path, &bytes).expect("write");
    drop(bytes);
    let (records, errors) = read(&path);
    assert_eq!(records, 1, "the record after the huge one is still read");
    assert_eq!(errors.len(), 1);
    assert!(errors[0].contains("MiB limit"), "{errors:?}");
    let _ = std::fs::remove_file(&path);
}
