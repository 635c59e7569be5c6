//! Writing binary COPY streams: the header and trailer around tuples taken from a decoder.

use bytes::Bytes;

use super::SIGNATURE;

/// The header of a stream without OIDs and without header extension.
pub fn header() -> Bytes {
    let mut h = Vec::with_capacity(19);
    h.extend_from_slice(SIGNATURE);
    h.extend_from_slice(&0u32.to_be_bytes());
    h.extend_from_slice(&0u32.to_be_bytes());
    Bytes::from(h)
}

/// The trailer: a field count of -1.
pub fn trailer() -> Bytes {
    Bytes::from_static(&[0xff, 0xff])
}

/// Splits `data` into COPY messages of at most `max` bytes without copying.
///
/// A CopyData message need not end on a tuple boundary; keeping messages to a few hundred KiB
/// keeps every message far below the server's 1 GiB limit, however large one row is.
pub fn frames(data: &Bytes, max: usize) -> impl Iterator<Item = Bytes> + '_ {
    let max = max.max(1);
    (0..data.len())
        .step_by(max)
        .map(move |start| data.slice(start..(start + max).min(data.len())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_cover_everything_once() {
        let data = Bytes::from((0..1000u32).map(|i| i as u8).collect::<Vec<_>>());
        let parts: Vec<Bytes> = frames(&data, 300).collect();
        assert_eq!(
            parts.iter().map(Bytes::len).collect::<Vec<_>>(),
            vec![300, 300, 300, 100]
        );
        assert_eq!(parts.concat(), data.to_vec());
        assert_eq!(frames(&Bytes::new(), 10).count(), 0);
    }

    #[test]
    fn header_is_19_bytes() {
        assert_eq!(header().len(), 19);
        assert_eq!(&trailer()[..], &[0xff, 0xff]);
    }
}
