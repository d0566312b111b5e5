//! Key tests that need the process to themselves: reading keys from the environment, and
//! counting heap allocations while a key is parsed.
//!
//! Its own binary with `harness = false` (see Cargo.toml): `main` runs every case on the only
//! thread. `std::env::set_var` while another thread reads the environment is undefined
//! behaviour on glibc (`setenv` may free the block a concurrent `getenv` is reading; the
//! function is `unsafe` from edition 2024), and under the default harness other tests run on
//! other threads. A global allocator sees every thread's allocations; alone, the count is
//! this code's.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use sealed_sessions::{Key, KeyError, KeyRing};

fn main() {
    assert_eq!(
        threads(),
        Some(1),
        "set_var needs a process with one thread"
    );
    no_test_sets_the_environment_beside_other_threads();
    keys_from_the_environment_name_the_variable_and_never_show_the_value();
    a_ring_from_the_environment_is_primary_first();
    parsing_a_key_puts_no_byte_of_it_on_the_heap();
    println!("keys: 4 passed");
}

/// This process's thread count, where the system tells it (Linux); `Some(1)` elsewhere.
fn threads() -> Option<usize> {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return Some(1);
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
}

/// Only `harness = false` binaries may change the environment: under the default harness,
/// tests run beside each other on several threads.
fn no_test_sets_the_environment_beside_other_threads() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    // The `[[test]]` sections with `harness = false`: their files have a process to
    // themselves.
    let alone: Vec<String> = manifest
        .split("[[")
        .filter(|section| section.starts_with("test]]") && section.contains("harness = false"))
        .filter_map(|section| {
            let name = section.lines().find_map(|l| l.strip_prefix("name = "))?;
            Some(format!("{}.rs", name.trim().trim_matches('"')))
        })
        .collect();
    assert!(alone.iter().any(|f| f == "keys.rs"), "{alone:?}");
    let mut offenders = Vec::new();
    for dir in ["src", "tests", "benches", "examples"] {
        visit(&root.join(dir), &mut |path| {
            let Ok(text) = std::fs::read_to_string(path) else {
                return;
            };
            let top = path.parent() == Some(&root.join("tests"));
            let own_process = top
                && path
                    .file_name()
                    .is_some_and(|f| alone.iter().any(|a| *a == *f.to_string_lossy()));
            let sets = ["env::set_var(", "env::remove_var("]
                .iter()
                .any(|call| text.contains(call));
            if sets && !own_process {
                offenders.push(path.strip_prefix(root).unwrap().display().to_string());
            }
        });
    }
    assert!(
        offenders.is_empty(),
        "these change the environment while other threads may read it: {offenders:?}"
    );
}

fn visit(dir: &Path, f: &mut dyn FnMut(&Path)) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            visit(&path, f);
        } else if path.extension().is_some_and(|e| e == "rs") {
            f(&path);
        }
    }
}

fn keys_from_the_environment_name_the_variable_and_never_show_the_value() {
    let key = Key::generate();
    let var = "SEALED_SESSIONS_TEST_KEY_FROM_ENV";
    std::env::remove_var(var);
    let missing = Key::from_env(var).unwrap_err();
    assert_eq!(missing, KeyError::EnvNotSet { var: var.into() });
    let message = format!("{missing:?}");
    assert!(message.contains(var) && message.contains("openssl rand -base64 32"));
    std::env::set_var(var, "  ");
    assert!(matches!(
        Key::from_env(var),
        Err(KeyError::EnvNotSet { .. })
    ));

    std::env::set_var(var, format!("{}\n", key.to_base64()));
    assert_eq!(Key::from_env(var).unwrap().id(), key.id());

    let secret_but_short = "c2VjcmV0LXZhbHVl"; // "secret-value"
    std::env::set_var(var, secret_but_short);
    let err = Key::from_env(var).unwrap_err();
    assert_eq!(
        err,
        KeyError::InEnv {
            var: var.into(),
            reason: Box::new(KeyError::WrongLength { len: 12 })
        }
    );
    for text in [err.to_string(), format!("{err:?}")] {
        assert!(text.contains(var) && text.contains("12 bytes"), "{text}");
        assert!(!text.contains(secret_but_short), "{text}");
    }

    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        std::env::set_var(var, std::ffi::OsStr::from_bytes(b"\xff not unicode"));
        assert_eq!(
            Key::from_env(var).unwrap_err(),
            KeyError::InEnv {
                var: var.into(),
                reason: Box::new(KeyError::NotBase64)
            }
        );
    }
    std::env::remove_var(var);
}

fn a_ring_from_the_environment_is_primary_first() {
    let a = Key::generate();
    let b = Key::from_bytes(&[0x5c; 32]).unwrap();
    let var = "SEALED_SESSIONS_TEST_RING_FROM_ENV";
    let hex_b = "5c".repeat(32);
    std::env::set_var(var, format!("{}, {hex_b}\n", a.to_base64()));
    let ring = KeyRing::from_env(var).unwrap();
    assert_eq!(ring.ids().collect::<Vec<_>>(), [a.id(), b.id()]);
    std::env::set_var(var, format!("{0} {0}", a.to_base64()));
    assert_eq!(
        KeyRing::from_env(var).unwrap_err(),
        KeyError::InEnv {
            var: var.into(),
            reason: Box::new(KeyError::DuplicateKeyId(a.id()))
        }
    );
    std::env::set_var(var, " , ");
    assert!(matches!(
        KeyRing::from_env(var),
        Err(KeyError::EnvNotSet { .. })
    ));
    std::env::remove_var(var);
    #[cfg(feature = "hyper")]
    {
        let config = sealed_sessions::SessionConfig::builder(a.clone())
            .build()
            .unwrap();
        assert!(format!("{config:?}").contains(&a.id().to_string()));
    }
}

/// Counts allocations while `COUNTING` is set; otherwise the system allocator, unchanged.
struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static COUNT: AtomicUsize = AtomicUsize::new(0);

fn note() {
    if COUNTING.load(Ordering::SeqCst) {
        COUNT.fetch_add(1, Ordering::SeqCst);
    }
}

// SAFETY: forwards every call to the system allocator unchanged; the bookkeeping is two
// atomics, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Heap allocations made by `f`.
fn allocations<R>(f: impl FnOnce() -> R) -> (usize, R) {
    COUNT.store(0, Ordering::SeqCst);
    COUNTING.store(true, Ordering::SeqCst);
    let r = f();
    COUNTING.store(false, Ordering::SeqCst);
    (COUNT.load(Ordering::SeqCst), r)
}

/// A key's bytes are decoded into a buffer that is zeroized when dropped, on every path,
/// failures included. What safe code can observe of that: parsing allocates nothing, so no
/// byte of the key is left in a heap block freed without being zeroized (the base64 decoder's
/// own `Vec` did that on a failed decode, and whenever the standard alphabet was tried first on
/// a URL-safe key, a prefix of it).
fn parsing_a_key_puts_no_byte_of_it_on_the_heap() {
    let key = Key::from_bytes(&[0xfb; 32]).unwrap();
    let standard = key.to_base64();
    let url_safe = standard.replace('+', "-").replace('/', "_");
    let cases: Vec<(String, Result<(), KeyError>)> = vec![
        (standard.clone(), Ok(())),
        (standard.trim_end_matches('=').to_owned(), Ok(())),
        (url_safe.clone(), Ok(())),
        (format!(" {url_safe}\n"), Ok(())),
        // Valid up to the last characters, which neither alphabet allows.
        (format!("{}!!", &standard[..41]), Err(KeyError::NotBase64)),
        // The two alphabets mixed.
        (standard.replacen('+', "-", 1), Err(KeyError::NotBase64)),
        ("c2hvcnQ=".to_owned(), Err(KeyError::WrongLength { len: 5 })),
        (
            format!("{}AAAA", standard.trim_end_matches('=')),
            Err(KeyError::WrongLength { len: 35 }),
        ),
        ("ab".repeat(32), Err(KeyError::HexNotBase64)),
    ];
    for (text, expected) in &cases {
        let (n, parsed) = allocations(|| Key::from_base64(text));
        let parsed = parsed.map(|k| assert_eq!(k.id(), key.id(), "{text:?}"));
        assert_eq!(&parsed, expected, "{text:?}");
        assert_eq!(n, 0, "Key::from_base64({text:?}) allocated");
        let (n, _) = allocations(|| Key::parse(text));
        assert_eq!(n, 0, "Key::parse({text:?}) allocated");
    }
}
