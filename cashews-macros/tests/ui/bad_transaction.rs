// A transaction's mode is one of three names, its timeout a duration, and the function must
// be able to return the transaction's errors.

#[cashews::transaction(mode = "eventual")]
async fn unknown_mode() -> Result<u32, cashews::Error> {
    Ok(1)
}

#[cashews::transaction(timeout = "10 parsecs")]
async fn bad_timeout() -> Result<u32, cashews::Error> {
    Ok(1)
}

#[cashews::transaction]
async fn cannot_fail() -> u32 {
    1
}

fn main() {}
