//! Counting an audit event in the metrics allocates nothing once its series exists: the
//! per-command cost of `ftpgate_commands_total` and the command-duration histogram is a
//! short scan, not a label string per event; and writing the event to the audit file
//! allocates nothing either once the sink's buffers have their size (the timestamp is
//! formatted on the stack) (issue 15: no allocation per command).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use ftpgate::audit::AuditRecord;
use ftpgate::metrics::Metrics;

thread_local! {
    /// Allocations made by this thread (the test counts its own only).
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

struct Counting;

// SAFETY: every call is passed on unchanged to the system allocator, which upholds
// GlobalAlloc's contract; the counter is a const-initialised thread-local Cell, which
// neither allocates nor unwinds.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: the caller's layout goes to System as given.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from System.alloc with this layout (see alloc).
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

fn command(decision: &'static str) -> AuditRecord {
    AuditRecord::Command {
        verb: "NOOP".into(),
        arg: String::new(),
        arg_hex: None,
        path: None,
        decision,
        reply: 200,
        line_hex: None,
        line_bytes: None,
    }
}

#[test]
fn a_counted_command_allocates_nothing_once_its_series_exists() {
    let mut m = Metrics::new();
    let allow = command("allow");
    let deny = command("deny");
    // First sight of each series: those allocate (the owned label values).
    m.observe(&allow, Some("pool"));
    m.observe(&deny, Some("pool"));
    m.observe_command(0.000_05);
    let before = allocations();
    for i in 0..10_000 {
        m.observe(if i % 3 == 0 { &deny } else { &allow }, Some("pool"));
        m.observe_command(0.000_05);
    }
    assert_eq!(allocations() - before, 0, "allocations per counted command");
    // And the counts are right.
    let samples = m.snapshot(&Default::default());
    let get = |name: &str, label: Option<&str>| {
        samples
            .iter()
            .find(|s| s.name == name && label.is_none_or(|l| s.labels.iter().any(|(_, v)| v == l)))
            .map(|s| s.value)
    };
    assert_eq!(
        get("ftpgate_commands_total", Some("allow")),
        Some(1.0 + 6_666.0)
    );
    assert_eq!(
        get("ftpgate_commands_total", Some("deny")),
        Some(1.0 + 3_334.0)
    );
    assert_eq!(
        get("ftpgate_command_duration_seconds_count", None),
        Some(10_001.0)
    );
}

#[test]
fn an_audited_command_allocates_nothing_once_the_sink_is_warm() {
    use ftpgate::audit::{AuditContext, AuditSink};
    use ftpgate::policy::{AuditDigest, AuditFailure, AuditMode, AuditPolicy};
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("audit.jsonl");
    let policy = AuditPolicy {
        file: Some(path.clone()),
        syslog: None,
        mode: AuditMode::Monitor,
        digest: AuditDigest::Sha256,
        on_failure: AuditFailure::Continue,
        filecopy: None,
        integrity: None,
    };
    let mut sink = AuditSink::open(&policy, 0).expect("open the audit file");
    let ctx = AuditContext {
        session: "s-1",
        client: "127.0.0.1:40000",
        user: Some("alice"),
        user_hex: None,
    };
    let record = command("allow");
    sink.emit(&ctx, &record);
    let before = allocations();
    for _ in 0..1_000 {
        sink.emit(&ctx, &record);
    }
    let per_event = (allocations() - before) as f64 / 1_000.0;
    drop(sink);
    let lines = std::fs::read_to_string(&path).expect("read the audit file");
    assert_eq!(lines.lines().count(), 1_001);
    assert_eq!(per_event, 0.0, "allocations per audited command");
}
