//! What is wrong with a catalog or plan file, naming the file.

#[derive(Debug, thiserror::Error)]
pub enum ContinuityError {
    #[error("cannot read {file}: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
    #[error("{file}: {message}")]
    Invalid { file: String, message: String },
}
