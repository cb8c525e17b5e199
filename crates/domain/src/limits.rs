//! The limits of a stock request, as constants and nothing else, so that the native baseline
//! of the benchmark (`bench/native`, which includes this file) checks the same limits
//! without depending on the domain crate (whose dependencies and features would change its
//! speed).

/// Units one deduct, restock or line may name.
pub const MAX_QUANTITY: i64 = 1_000_000;
/// An order id's length, in characters.
pub const MAX_ORDER_ID_CHARS: usize = 128;
/// A restock reason's length, in characters.
pub const MAX_REASON_CHARS: usize = 64;
/// Lines in a batch deduct or a hold.
pub const MAX_BATCH_LINES: usize = 100;
/// An `Idempotency-Key`'s length, in (visible ASCII) characters.
pub const MAX_IDEMPOTENCY_KEY_CHARS: usize = 255;
