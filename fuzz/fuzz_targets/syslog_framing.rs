//! Arbitrary bytes as a syslog TCP stream, cut into reads at points the first bytes
//! choose. Framing must never panic, every frame must respect the size limit, and the
//! frames must not depend on where the reads were cut.
#![no_main]

use koban_server::framing::Framer;
use libfuzzer_sys::fuzz_target;

const LIMIT: usize = 4096;

fn frames(chunks: &[&[u8]]) -> (Vec<Vec<u8>>, bool) {
    let mut f = Framer::new(LIMIT);
    let mut out = Vec::new();
    for c in chunks {
        f.push(c);
        loop {
            match f.next_frame() {
                Ok(Some(fr)) => {
                    assert!(fr.len() <= LIMIT, "frame over the limit");
                    out.push(fr.to_vec());
                }
                Ok(None) => break,
                Err(_) => return (out, true),
            }
        }
    }
    if let Some(fr) = f.finish() {
        out.push(fr.to_vec());
    }
    (out, false)
}

fuzz_target!(|data: &[u8]| {
    let Some((&cut, stream)) = data.split_first() else { return };
    let whole = frames(&[stream]);
    let at = (cut as usize).min(stream.len());
    let (a, b) = stream.split_at(at);
    let split = frames(&[a, b]);
    // A stream that errors may error at a different frame when cut (the limit check on
    // a partial line sees fewer bytes); streams that frame cleanly must frame the same.
    if !whole.1 && !split.1 {
        assert_eq!(whole.0, split.0, "frames depend on read boundaries");
    }
});
