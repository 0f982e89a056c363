//! Reading corpora: the built-in one, text files, directories with globs, JSONL, hub stubs,
//! and the errors each gives.

use std::{fs, io::Write, path::Path};

use blt_data::{BuiltinCorpus, ByteDataset, DataError, DataSource, DatasetConfig, KJV_SHA256};
use sha2::{Digest, Sha256};

fn write(path: &Path, bytes: &[u8]) {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).unwrap();
    }
    fs::write(path, bytes).unwrap();
}

fn load(text: &str) -> Result<Vec<Vec<u8>>, DataError> {
    DataSource::parse(text)?.load()
}

#[test]
fn builtin_corpus_loads_and_its_checksum_verifies() {
    let text = BuiltinCorpus::Kjv.text().unwrap();
    assert_eq!(text.len(), 4_298_239);
    let digest: String = Sha256::digest(&text)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(digest, KJV_SHA256);
    assert_eq!(text.iter().filter(|&&b| b == b'\n').count(), 34_669);

    let docs = load("builtin:kjv").unwrap();
    // A lone empty line precedes the first heading, then one document per chapter.
    assert_eq!(docs.len(), 1 + 1189);
    assert_eq!(docs[0], b"\n");
    assert!(docs[1].starts_with(b"Genesis 1\n\n  1 In the beginning God created"));
    assert!(docs[1189].starts_with(b"Revelation 22\n"));
    assert_eq!(docs.concat(), text);

    let dataset = ByteDataset::new(docs, DatasetConfig::default()).unwrap();
    let stats = dataset.stats();
    assert_eq!(stats.initial_documents, 1190);
    assert_eq!(stats.empty_removed, 1);
    assert_eq!(stats.too_short_removed, 0);
    assert_eq!(stats.kept_documents, 1189);
    assert_eq!(stats.total_bytes, 4_298_239 - 1);
}

#[test]
fn text_files_directories_and_globs() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(&root.join("a.txt"), b"first \xff\xfe bytes kept");
    write(&root.join("sub/b.txt"), b"second");
    write(&root.join("sub/deeper/c.txt"), b"third");
    write(&root.join("sub/notes.md"), b"markdown");
    write(
        &root.join("sub/data.jsonl"),
        b"{\"text\": \"from jsonl\"}\n",
    );
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(b"zipped text").unwrap();
    write(&root.join("z.txt.gz"), &gz.finish().unwrap());

    let root_str = root.display().to_string();
    // One file is one document, bytes exactly as stored (invalid UTF-8 kept).
    assert_eq!(
        load(&format!("{root_str}/a.txt")).unwrap(),
        vec![b"first \xff\xfe bytes kept".to_vec()]
    );
    assert_eq!(
        load(&format!("{root_str}/z.txt.gz")).unwrap(),
        vec![b"zipped text".to_vec()]
    );
    // A bare directory reads every *.txt at any depth, in sorted path order.
    assert_eq!(
        load(&root_str).unwrap(),
        vec![
            b"first \xff\xfe bytes kept".to_vec(),
            b"second".to_vec(),
            b"third".to_vec()
        ]
    );
    assert_eq!(
        load(&format!("{root_str}/**/*.md")).unwrap(),
        vec![b"markdown".to_vec()]
    );
    assert_eq!(load(&format!("{root_str}/*.txt")).unwrap().len(), 1);
    assert_eq!(
        load(&format!("{root_str}/sub/*.txt")).unwrap(),
        vec![b"second".to_vec()]
    );
    assert_eq!(
        load(&format!("{root_str}/**/*.jsonl")).unwrap(),
        vec![b"from jsonl".to_vec()]
    );
    assert_eq!(load(&format!("{root_str}/**/*")).unwrap().len(), 6);
    let err = load(&format!("{root_str}/**/*.rst")).unwrap_err();
    assert!(matches!(err, DataError::NoFiles { .. }), "{err}");
    assert!(err.to_string().contains(&root_str), "{err}");
}

#[test]
fn jsonl_reads_the_configured_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("docs.jsonl");
    write(
        &path,
        b"{\"text\": \"one\", \"body\": \"uno\"}\n\n{\"text\": \"two\\u00e9\", \"body\": \"dos\"}\r\n",
    );
    let p = path.display();
    assert_eq!(
        load(&format!("{p}")).unwrap(),
        vec![b"one".to_vec(), "two\u{e9}".as_bytes().to_vec()]
    );
    assert_eq!(
        load(&format!("{p}:field=body")).unwrap(),
        vec![b"uno".to_vec(), b"dos".to_vec()]
    );
}

#[test]
fn malformed_jsonl_names_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.jsonl");
    let p = path.display().to_string();
    let cases: [(&[u8], usize, &str); 5] = [
        (
            b"{\"text\": \"ok\"}\n{\"text\": \"unterminated}\n",
            2,
            "malformed JSON",
        ),
        (
            b"{\"text\": \"ok\"}\n\n{\"other\": 1}\n",
            3,
            "`text` is missing",
        ),
        (b"{\"text\": 5}\n", 1, "`text` is a number, not a string"),
        (b"[1, 2]\n", 1, "an array, not an object"),
        (b"{\"text\": \"ok\"}\n\xff\xfe\n", 2, "malformed JSON"),
    ];
    for (content, line, needle) in cases {
        write(&path, content);
        let err = load(&p).unwrap_err();
        let message = err.to_string();
        assert!(message.contains(&format!("{p}:{line}:")), "{message}");
        assert!(message.contains(needle), "{message}");
        match err {
            DataError::JsonLine { line: l, .. } | DataError::JsonField { line: l, .. } => {
                assert_eq!(l, line)
            }
            other => panic!("unexpected error {other:?}"),
        }
    }
}

#[test]
fn missing_and_unreadable_paths_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.txt");
    let err = load(&missing.display().to_string()).unwrap_err();
    assert!(matches!(err, DataError::NotFound { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&missing.display().to_string()),
        "{err}"
    );

    let missing_dir = dir.path().join("no_dir");
    let err = load(&format!("{}/**/*.txt", missing_dir.display())).unwrap_err();
    assert!(err.to_string().contains("no_dir"), "{err}");

    // A file where a directory is expected cannot be listed.
    let file = dir.path().join("plain.txt");
    write(&file, b"text");
    let err = load(&format!("{}/*.txt", file.display())).unwrap_err();
    assert!(matches!(err, DataError::Io { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&file.display().to_string()),
        "{err}"
    );

    // A directory without read permission (skipped where permissions are not enforced, e.g.
    // when the tests run as root).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let locked = dir.path().join("locked");
        write(&locked.join("inner.txt"), b"secret");
        fs::set_permissions(&locked, fs::Permissions::from_mode(0o000)).unwrap();
        if fs::read_dir(&locked).is_err() {
            let err = load(&locked.display().to_string()).unwrap_err();
            assert!(matches!(err, DataError::Io { .. }), "{err:?}");
            assert!(
                err.to_string().contains(&locked.display().to_string()),
                "{err}"
            );
        }
        fs::set_permissions(&locked, fs::Permissions::from_mode(0o755)).unwrap();
    }
}

#[cfg(not(feature = "hub"))]
#[test]
fn hub_sources_need_the_feature() {
    let err = load("hub:wikitext-103").unwrap_err();
    assert!(matches!(err, DataError::HubDisabled { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("`hub` feature") && !message.contains('\n'),
        "{message}"
    );
}

/// A corpus streamed into a temporary file (`Storage::TempFile`, `data.in_memory = false`)
/// gives exactly the dataset the in-memory one gives: the same rows (bytes, ids, documents,
/// document ends), the same statistics and the same split, with the filtered documents rolled
/// back from the file; and the document limit stops reading at the same place.
#[test]
fn a_corpus_on_disk_is_the_same_dataset_as_in_memory() {
    use blt_data::Storage;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("corpus");
    // Long enough to need several rows, next to documents the filters remove.
    write(
        &root.join("a.txt"),
        "In the beginning. ".repeat(200).as_bytes(),
    );
    write(&root.join("b.txt"), b"  \n\t ");
    write(&root.join("c.txt"), b"short");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all("and the earth was without form ".repeat(90).as_bytes())
        .unwrap();
    write(&root.join("d.txt.gz"), &gz.finish().unwrap());
    write(
        &root.join("e.jsonl"),
        b"{\"text\": \"a first line that is long enough\"}\n\n{\"text\": \"  \"}\n{\"text\": \"tiny\"}\n{\"text\": \"the last line of the file, kept\"}\n",
    );
    let source = DataSource::parse(&format!("{}/**/*", root.display())).unwrap();
    let config = DatasetConfig {
        min_length: 10,
        max_length: 64,
        valid_fraction: 0.3,
        seed: 3,
    };
    for limit in [0, 4] {
        let memory = ByteDataset::from_source(&source, config.clone(), limit).unwrap();
        let disk = ByteDataset::from_source_stored(
            &source,
            config.clone(),
            limit,
            Storage::TempFile(dir.path().to_path_buf()),
        )
        .unwrap();
        assert_eq!(disk.stats(), memory.stats(), "limit {limit}");
        assert_eq!(disk.rows(), memory.rows(), "limit {limit}");
        for (d, m) in disk.rows().iter().zip(memory.rows()) {
            assert_eq!(d.ids(), m.ids());
        }
        let (d, m) = (disk.split(), memory.split());
        assert_eq!(d.train.row_indices(), m.train.row_indices());
        assert_eq!(d.valid.row_indices(), m.valid.row_indices());
    }
    let all = ByteDataset::from_source(&source, config.clone(), 0).unwrap();
    let stats = all.stats();
    assert_eq!(stats.initial_documents, 8, "{stats:?}");
    assert_eq!(
        (stats.empty_removed, stats.too_short_removed),
        (2, 2),
        "{stats:?}"
    );
    // The limit counts documents read, kept or not: a.txt, b.txt, c.txt and d.txt.gz.
    let first_four = ByteDataset::from_source(&source, config, 4).unwrap();
    assert_eq!(first_four.stats().initial_documents, 4);
    assert_eq!(first_four.num_documents(), 2);
}
