# Sourced by the other scripts: system packages, cache locations, the binary's path.
# Caches live outside the clone so reruns are fast; nothing here assumes they already exist.
QUALSCRIBE_CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/qualscribe"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$QUALSCRIBE_CACHE/target}"
export QUALSCRIBE_MODELS="${QUALSCRIBE_MODELS:-$QUALSCRIBE_CACHE/models}"
QS="$CARGO_TARGET_DIR/release/qualscribe"
# Python with the real client programs the tests open our files with (QualCoder, python-docx).
export QUALSCRIBE_CLIENTS_PYTHON="${QUALSCRIBE_CLIENTS_PYTHON:-$QUALSCRIBE_CACHE/clients-venv/bin/python}"

# whisper-rs builds whisper.cpp with cmake and bindgen (clang); libopus is built by cmake too.
need_system_packages() {
    local missing=()
    command -v cmake >/dev/null || missing+=(cmake)
    command -v clang >/dev/null || missing+=(clang)
    ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1 || missing+=(libclang-dev)
    command -v python3 >/dev/null || missing+=(python3 python3-pip)
    command -v xmllint >/dev/null || missing+=(libxml2-utils)  # REFI-QDA schema checks in the tests
    if [ ${#missing[@]} -gt 0 ]; then
        echo "installing system packages: ${missing[*]}" >&2
        local sudo=""
        [ "$(id -u)" -eq 0 ] || sudo="sudo"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

build_release() {
    need_system_packages
    cargo build --release --locked --quiet
}

# QualCoder's importer and python-docx, pinned, in a venv in the cache (brought up to date
# when the requirements change).
need_clients_venv() {
    local venv="$QUALSCRIBE_CACHE/clients-venv" req="scripts/clients-requirements.txt"
    # PyQt6's multimedia module (QualCoder imports it) links the PulseAudio client library.
    if ! ldconfig -p | grep -q libpulse.so.0; then
        local sudo=""
        [ "$(id -u)" -eq 0 ] || sudo="sudo"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq libpulse0 >/dev/null
    fi
    if [ -x "$venv/bin/python" ] && cmp -s "$req" "$venv/requirements.txt"; then
        return
    fi
    echo "installing the client programs the tests use (QualCoder's Python packages, python-docx)" >&2
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
    cp "$req" "$venv/requirements.txt"
}
