#!/usr/bin/env bash
# chunkwise build entry point.
#
#   ./build.sh          build pkg/miniprogram, pkg/web, pkg/node (and copy into the demo)
#   ./build.sh test     build, then run every test (native, wasm in Node and Chromium, JS, demo, frameworks)
#   ./build.sh frameworks  build, then only the framework tests (Taro, uni-app, 构建 npm, Node, webpack, Vite, tsc)
#   ./build.sh demo     build, then start the relay with the demo model on 127.0.0.1:${PORT:-8787}
#   ./build.sh bench    build, then run the decoder benchmarks (and the relay benchmark with RELAY_BENCH=1)
#   ./build.sh fuzz     a long randomized run of the core properties (FUZZ_CASES=N, default 200000)
#
# Everything the project needs is installed on first use and reused afterwards.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
ROOT=$(pwd)
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}

log() { printf '\n== %s\n' "$*" >&2; }

# ---------------------------------------------------------------------------------------
# Tools
# ---------------------------------------------------------------------------------------
APT_UPDATED=0
apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]} (apt)"
  local sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  if [ $APT_UPDATED -eq 0 ]; then $sudo apt-get update -qq; APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

locked_version() { # the version of a crate that Cargo.lock pins
  awk -v name="$1" '$0 == "name = \"" name "\"" { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock
}

ensure_build_tools() {
  rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
  local want; want=$(locked_version wasm-bindgen)
  if ! wasm-bindgen --version 2>/dev/null | grep -qF " $want"; then
    log "installing wasm-bindgen-cli $want (the version Cargo.lock pins)"
    cargo install wasm-bindgen-cli --version "$want" --force
  fi
  command -v brotli >/dev/null || apt_install brotli
  command -v node >/dev/null || apt_install nodejs npm
  # wasm-opt comes from npm's binaryen (pinned in tools/package.json): Debian's is too old.
  npm_deps tools ci
}

# npm dependencies of one folder, installed once per content of its package.json and lockfile
# (and Node's version) into a cache outside the checkout, then linked in file by file
# (`cp -al`: no copy, and no symlinked node_modules for a bundler to resolve through). A clean
# clone therefore installs nothing that an earlier run on this machine installed.
#   npm_deps DIR ci       npm ci (the lockfile as it is)
#   npm_deps DIR install  npm install --no-save (tolerates optional packages that were never
#                         published for another platform, which npm ci rejects)
NPM_CACHE_ROOT=${CHUNKWISE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/chunkwise}/node_modules
npm_deps() {
  local dir=$1 how=$2 key cached
  key=$(cat "$dir/package.json" "$dir/package-lock.json" 2>/dev/null | { cat; node --version; } | sha256sum | cut -c1-16)
  cached=$NPM_CACHE_ROOT/$(echo "$dir" | tr / _)-$key
  [ -f "$dir/node_modules/.chunkwise-$key" ] && return 0
  rm -rf "$dir/node_modules"
  if [ ! -f "$cached/.chunkwise-$key" ]; then
    log "installing npm dependencies of $dir"
    if [ "$how" = ci ]; then (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    else (cd "$dir" && npm install --no-save --no-audit --no-fund --loglevel=error); fi
    touch "$dir/node_modules/.chunkwise-$key"
    mkdir -p "$NPM_CACHE_ROOT"
    rm -rf "$cached.tmp" && cp -al "$dir/node_modules" "$cached.tmp" && rm -rf "$cached" && mv "$cached.tmp" "$cached"
  else
    cp -al "$cached" "$dir/node_modules"
  fi
}

wasm_opt() { node tools/node_modules/binaryen/bin/wasm-opt "$@"; }

ensure_test_tools() {
  apt_install chromium chromium-driver
  # The relay's shared-store tests start redis-server and nginx on loopback ports.
  apt_install redis-server nginx
  if ! command -v wasm-pack >/dev/null; then
    log "installing wasm-pack"
    cargo install wasm-pack --version 0.15.1
  fi
  ensure_node_modules
}

ensure_jsc() {
  # JavaScriptCore's shell: the engine of iOS WeChat (there without JIT) and iOS browsers.
  command -v jsc >/dev/null || apt_install libjavascriptcoregtk-4.0-bin
}

ensure_node_modules() {
  # tests/js holds the JS test and benchmark dependencies (the published package has none).
  npm_deps tests/js ci
}

ensure_framework_deps() {
  # tests/frameworks: the real toolchains the package is built with (Taro, uni-app, webpack,
  # Vite, miniprogram-ci, TypeScript with the official typings), each project with its own
  # lockfile, installed the three at once (mostly waiting on the registry). `install`, not
  # `ci`: Taro 4.2.1's optional @tarojs/binding-darwin-* packages were never published.
  local dir pids=() dirs=() i
  for dir in tools taro uniapp; do
    npm_deps tests/frameworks/$dir install &
    pids+=($!) dirs+=("$dir")
  done
  for i in "${!pids[@]}"; do
    wait "${pids[$i]}" || { echo "installing tests/frameworks/${dirs[$i]} failed" >&2; return 1; }
  done
}

framework_tests() {
  # From `npm pack` of pkg/: each toolchain's real build, run in the mini-program sandbox or
  # headless Chromium; tsc --strict with the official typings; are-the-types-wrong.
  apt_install chromium
  ensure_framework_deps
  log "framework tests (node --test tests/frameworks/)"
  node --test tests/frameworks/
}

# ---------------------------------------------------------------------------------------
# Build
# ---------------------------------------------------------------------------------------
size_of() { wc -c <"$1" | tr -d ' '; }

build() {
  ensure_build_tools
  # Two modules, one per crate: the decoder (small: it is all most pages load) and the
  # Markdown renderer (pulldown-cmark alone is ~180 KB), loaded only by markdown.js.
  local bg=target/bindgen
  rm -rf "$bg"
  local module crate name
  # Panic locations name their source files. A dependency's path relative to cargo's
  # registry (not this machine's cargo home) keeps the modules the same on every machine,
  # names nothing of the build machine, and is shorter (the Markdown module: 590 B raw).
  local remap="" dir
  for dir in "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/; do
    remap+=" --remap-path-prefix=$dir="
  done
  export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="${CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS:-}$remap"
  for module in decoder markdown; do
    # (the Markdown module's own allocator is a feature only its build turns on: see
    # markdown/src/allocator.rs)
    local features=()
    if [ $module = decoder ]; then crate=chunkwise-wasm name=chunkwise_glue; else crate=chunkwise-markdown name=chunkwise_markdown_glue features=(--features wasm-allocator); fi
    log "building the $module wasm module"
    cargo build --target wasm32-unknown-unknown --profile wasm -p $crate "${features[@]}"
    local wasm=target/wasm32-unknown-unknown/wasm/${crate//-/_}.wasm
    local prefix=""; [ $module = markdown ] && prefix="markdown-"
    wasm-bindgen --target web --out-dir "$bg/${prefix}web" --out-name $name "$wasm"
    wasm-bindgen --target nodejs --out-dir "$bg/${prefix}node" --out-name $name "$wasm"
    wasm-bindgen --target bundler --out-dir "$bg/${prefix}bundler" --out-name $name "$wasm"
  done
  # Assembled beside pkg/ and swapped in at the end, so a test or benchmark reading pkg/
  # while a build runs never sees it half written.
  local out=target/pkg.new
  rm -rf "$out"
  node tools/make-packages.js "$bg" "$out"
  # wasm-opt after wasm-bindgen (it also strips names and the producers section).
  local opt=(-Oz --enable-bulk-memory --enable-sign-ext --enable-mutable-globals --enable-nontrapping-float-to-int --enable-reference-types --enable-multivalue --strip-debug --strip-producers)
  # Both modules are run to a fixed point (--converge): smaller raw, which both size limits
  # need (the decoder: 157 B less raw, 69 B more brotli, where its limit has more room).
  opt+=(--converge)
  for name in chunkwise_glue chunkwise_markdown_glue; do
    local prefix=""
    [ $name = chunkwise_markdown_glue ] && prefix="markdown-"
    # The Markdown module: -O3 instead of -Oz over its opt-level "z" code: 3-5% less time per
    # streamed append in JavaScriptCore without JIT for 2.7 KB more raw and 139 B less brotli
    # (opt-level "s", 2 or 3 would cut 27-40% but do not fit: markdown/README.md).
    local level=-Oz; [ $name = chunkwise_markdown_glue ] && level=-O3
    wasm_opt $level "${opt[@]:1}" "$bg/${prefix}web/${name}_bg.wasm" -o "$out/web/${name}_bg.wasm"
    wasm_opt $level "${opt[@]:1}" "$bg/${prefix}node/${name}_bg.wasm" -o "$out/node/${name}_bg.wasm"
  done
  # The mini-program package ships only the .br (base library 2.14.0+); raw sizes are measured here.
  brotli -f -q 11 -o "$out/miniprogram/chunkwise.wasm.br" "$out/web/chunkwise_glue_bg.wasm"
  brotli -f -q 11 -o "$out/miniprogram/chunkwise_markdown.wasm.br" "$out/web/chunkwise_markdown_glue_bg.wasm"
  local raw br js md_raw md_br md_js
  raw=$(size_of "$out/web/chunkwise_glue_bg.wasm")
  br=$(size_of "$out/miniprogram/chunkwise.wasm.br")
  js=$(size_of "$out/miniprogram/index.js")
  md_raw=$(size_of "$out/web/chunkwise_markdown_glue_bg.wasm")
  md_br=$(size_of "$out/miniprogram/chunkwise_markdown.wasm.br")
  md_js=$(size_of "$out/miniprogram/markdown.js")
  node tools/package-layout.js "$out"
  rm -rf pkg.old
  [ -d pkg ] && mv pkg pkg.old
  mv "$out" pkg
  rm -rf pkg.old
  # The demo imports the mini-program build as DevTools' "构建 npm" would place it.
  if [ -d miniprogram-demo ]; then
    rm -rf miniprogram-demo/miniprogram_npm/chunkwise
    mkdir -p miniprogram-demo/miniprogram_npm/chunkwise
    cp pkg/miniprogram/* miniprogram-demo/miniprogram_npm/chunkwise/
  fi
  printf '\nmini-program build: chunkwise.wasm %s bytes (%s KB), brotli %s bytes (%s KB); glue index.js %s bytes (%s KB)\n' \
    "$raw" "$((raw / 1000))" "$br" "$((br / 1000))" "$js" "$((js / 1000))"
  printf 'markdown module: chunkwise_markdown.wasm %s bytes (%s KB), brotli %s bytes (%s KB); markdown.js %s bytes (%s KB)\n' \
    "$md_raw" "$((md_raw / 1000))" "$md_br" "$((md_br / 1000))" "$md_js" "$((md_js / 1000))"
}

# ---------------------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------------------
run_tests() {
  build
  ensure_test_tools
  log "native tests (cargo test --workspace)"
  cargo test --workspace
  log "lints"
  cargo clippy --workspace --all-targets -- -D warnings
  log "wasm-bindgen tests in Node (wasm-pack test --node)"
  wasm-pack test --node -- -p chunkwise-wasm --test wasm_node
  log "wasm-bindgen tests in headless Chromium (wasm-pack test --headless --chrome)"
  CHROMEDRIVER=${CHROMEDRIVER:-/usr/bin/chromedriver} wasm-pack test --headless --chrome -- -p chunkwise-wasm --test wasm_browser
  log "JS tests (node --test)"
  node --test tests/js/
  log "the decoder in JavaScriptCore without JIT (tests/jsc)"
  ensure_jsc
  node tests/jsc/run.js tests/jsc/correctness.js
  framework_tests
}

case "${1:-build}" in
  build) build ;;
  test) run_tests ;;
  frameworks)
    build
    framework_tests
    ;;
  demo)
    build
    log "building the relay"
    cargo build --release -p chunkwise-relay
    port=${PORT:-8787}
    cat <<EOF

chunkwise demo
  H5 page (browser):  http://127.0.0.1:$port/
  Mini program:       WeChat DevTools -> 导入项目 (Import project) -> $ROOT/miniprogram-demo
                      AppID touristappid; "不校验合法域名" (urlCheck: false) is already set in
                      project.config.json; the page talks to the relay named in config.js
                      (http://127.0.0.1:8787: change it there if PORT differs)
  Model:              the built-in demo model; for a real one set UPSTREAM_BASE_URL,
                      UPSTREAM_API_KEY and UPSTREAM_MODEL (relay/README.md)
  Stop:               Ctrl-C

EOF
    RELAY_STATIC_DIR="$ROOT/miniprogram-demo/h5" RELAY_PKG_DIR="$ROOT/pkg" exec target/release/chunkwise-relay
    ;;
  bench)
    build
    ensure_node_modules
    node bench/decoder.js
    ensure_jsc
    node bench/decoder-jsc.js
    node bench/markdown.js
    node bench/setdata.js
    if [ "${RELAY_BENCH:-0}" = 1 ]; then bash bench/relay/run.sh; fi
    ;;
  fuzz)
    FUZZ_CASES=${FUZZ_CASES:-200000} cargo test --release --test fuzz -- --ignored --nocapture
    ;;
  *)
    echo "usage: $0 [build|test|frameworks|demo|bench|fuzz]" >&2
    exit 2
    ;;
esac
