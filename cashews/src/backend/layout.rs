//! The Redis byte layouts that the memory and disk backends store too, so that values read
//! the same everywhere: counters as decimal text, bit fields in `BITFIELD` order.

/// A counter's value: decimal text without a sign `+` or spaces, as Redis reads it.
pub(crate) fn parse_int(bytes: &[u8]) -> Option<i64> {
    std::str::from_utf8(bytes)
        .ok()
        .filter(|s| !s.starts_with('+') && !s.is_empty())
        .and_then(|s| s.parse::<i64>().ok())
}

/// Reads an unsigned big-endian field of `size` bits at bit `offset` (Redis BITFIELD layout).
pub(crate) fn read_field(bits: &[u8], offset: u64, size: u8) -> u64 {
    let mut value = 0u64;
    for i in 0..u64::from(size) {
        let bit = offset + i;
        let byte = usize::try_from(bit / 8).unwrap_or(usize::MAX);
        let set = bits.get(byte).is_some_and(|b| b & (0x80 >> (bit % 8)) != 0);
        value = (value << 1) | u64::from(set);
    }
    value
}

/// Writes `value` into the field [`read_field`] reads, growing `bits` as needed.
pub(crate) fn write_field(bits: &mut Vec<u8>, offset: u64, size: u8, value: u64) {
    let end_byte = usize::try_from((offset + u64::from(size)).div_ceil(8)).unwrap_or(usize::MAX);
    if bits.len() < end_byte {
        bits.resize(end_byte, 0);
    }
    for i in 0..u64::from(size) {
        let bit = offset + i;
        let byte = usize::try_from(bit / 8).unwrap_or(usize::MAX);
        let mask = 0x80u8 >> (bit % 8);
        let on = (value >> (u64::from(size) - 1 - i)) & 1 == 1;
        if let Some(b) = bits.get_mut(byte) {
            if on {
                *b |= mask;
            } else {
                *b &= !mask;
            }
        }
    }
}
