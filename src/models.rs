//! Model installation (being written). Fixed facts other stages rely on are here.

use std::path::PathBuf;

/// File name of the installed Silero VAD model inside the models folder.
pub const VAD_FILE: &str = "silero_vad_op18_ifless.onnx";

/// The models folder: `$QUALSCRIBE_MODELS`, else `${XDG_CACHE_HOME:-~/.cache}/qualscribe/models`.
pub fn default_models_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("QUALSCRIBE_MODELS") {
        return PathBuf::from(dir);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| directories::BaseDirs::new().map(|b| b.cache_dir().to_path_buf()))
        .unwrap_or_else(|| PathBuf::from(".cache"));
    cache.join("qualscribe").join("models")
}
