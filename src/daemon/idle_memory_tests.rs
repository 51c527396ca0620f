//! Releasing idle memory on real mappings of this test process: a clean read-only file
//! mapping is unmapped and reads back the file; a read-only mapping holding a private copy
//! (as the loader's relocated RELRO does) keeps its pages.

use std::io::Write;

use super::linux::mappings;
use super::*;

const PAGE: usize = 4096;

/// A private mapping of a fresh one-page file of `byte`s, with protection `prot`.
fn map_file(name: &str, byte: u8, prot: libc::c_int) -> *mut u8 {
    use std::os::fd::AsRawFd;
    let path = std::env::temp_dir().join(format!("sessctl-idle-{}-{name}", std::process::id()));
    let mut file = std::fs::File::create(&path).unwrap();
    file.write_all(&[byte; PAGE]).unwrap();
    let file = std::fs::File::open(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    // SAFETY: a new private mapping of a file we own, one page long.
    let address = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            PAGE,
            prot,
            libc::MAP_PRIVATE,
            file.as_raw_fd(),
            0,
        )
    };
    assert_ne!(address, libc::MAP_FAILED);
    address.cast()
}

/// The mapping of this process that starts at `address`, as smaps shows it now.
fn mapping_at(address: *mut u8) -> super::linux::Mapping {
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
    mappings(&smaps)
        .into_iter()
        .find(|m| m.start == address as usize)
        .expect("the mapping is listed")
}

#[test]
fn a_clean_read_only_file_mapping_is_unmapped_and_reads_back() {
    let page = map_file("clean", b'f', libc::PROT_READ);
    // SAFETY: `page` is a readable one-page mapping.
    assert_eq!(unsafe { page.read_volatile() }, b'f');
    assert!(mapping_at(page).releasable());
    release();
    assert_eq!(mapping_at(page).rss_kb, 0, "its page is no longer resident");
    // SAFETY: as above; the page maps back from the file.
    assert_eq!(unsafe { page.add(PAGE - 1).read_volatile() }, b'f');
}

#[test]
fn a_read_only_mapping_with_a_private_copy_keeps_it() {
    let page = map_file("relocated", b'f', libc::PROT_READ | libc::PROT_WRITE);
    // SAFETY: `page` is a writable private one-page mapping; the write makes a private copy,
    // then the page is made read-only, as the loader does to RELRO after relocating it.
    unsafe {
        page.write_volatile(b'w');
        assert_eq!(libc::mprotect(page.cast(), PAGE, libc::PROT_READ), 0);
    }
    let mapping = mapping_at(page);
    assert!(mapping.clean_file, "read-only, private, file-backed");
    assert!(
        !mapping.releasable(),
        "it holds a private page: {mapping:?}"
    );
    release();
    // SAFETY: still a readable mapping.
    assert_eq!(
        unsafe { page.read_volatile() },
        b'w',
        "the written byte survives"
    );
}

#[test]
fn only_private_read_only_file_mappings_with_resident_pages_qualify() {
    let smaps = "\
5600-5700 r-xp 00001000 08:01 42 /usr/bin/sessctl-daemon
Rss:                  64 kB
Anonymous:             0 kB
5700-5800 rw-p 00002000 08:01 42 /usr/bin/sessctl-daemon
Rss:                   8 kB
Anonymous:             0 kB
5800-5900 r--s 00000000 08:01 43 /tmp/shared
Rss:                   8 kB
Anonymous:             0 kB
5900-5a00 rw-p 00000000 00:00 0 [heap]
Rss:                  80 kB
Anonymous:            80 kB
5a00-5b00 r--p 00000000 08:01 42 /usr/bin/sessctl-daemon
Rss:                   8 kB
5b00-5c00 r--p 00000000 08:01 42 /usr/bin/sessctl-daemon
Rss:                   0 kB
Anonymous:             0 kB
";
    let found: Vec<bool> = mappings(smaps)
        .iter()
        .map(super::linux::Mapping::releasable)
        .collect();
    // Code: yes. Writable, shared, anonymous: no. Anonymous line missing: no. Nothing
    // resident: nothing to do.
    assert_eq!(found, [true, false, false, false, false, false]);
}

#[test]
fn release_waits_for_work_then_a_quiet_spell_before_a_long_sleep() {
    let mut idle = IdleMemory::new();
    let short = IDLE_SLEEP.saturating_sub(Duration::from_millis(1));
    assert_eq!(idle.nap(short), short, "a short sleep is not idle");
    assert_eq!(
        idle.nap(IDLE_SLEEP),
        QUIET,
        "start-up was work: wait for quiet"
    );
    idle.worked();
    assert!(
        !idle.waiting,
        "a request during the quiet wait starts it over"
    );
    assert_eq!(idle.nap(IDLE_SLEEP), QUIET);
    idle.woke();
    assert!(!idle.worked, "released after the quiet wait");
    assert_eq!(
        idle.nap(IDLE_SLEEP),
        IDLE_SLEEP,
        "nothing to release: the full sleep"
    );
    idle.woke();
    assert!(!idle.worked && !idle.waiting);
}
