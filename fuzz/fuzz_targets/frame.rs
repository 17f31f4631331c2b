//! The frame codec and the alert decoder on arbitrary bytes: no panic, no
//! allocation beyond the limit, and a frame that is returned is exactly the
//! length its prefix said and never more than the limit.
#![no_main]

use ipc::frame::{MAX_FRAME, read_frame, split_frame};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let max = MAX_FRAME;
    match split_frame(data, max) {
        Ok(Some((frame, used))) => {
            assert!(frame.len() <= max);
            assert_eq!(used, 4 + frame.len());
            assert!(used <= data.len());
        }
        Ok(None) => {
            assert!(data.len() < 4 || data.len() < 4 + u32::from_be_bytes(data[..4].try_into().unwrap()) as usize)
        }
        Err(_) => {}
    }
    let mut cursor = std::io::Cursor::new(data);
    while let Ok(Some(frame)) = read_frame(&mut cursor, max) {
        assert!(frame.len() <= max);
        let _ = ipc::alert::decode(&frame);
    }
});
