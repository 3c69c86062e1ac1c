// webpack 5 for a browser, with no rule or option for chunkwise: its wasm arrives through
// `new URL('…_bg.wasm', import.meta.url)`, which webpack emits as an asset by itself.
const path = require('path');

module.exports = {
  mode: 'production',
  entry: './src/main.js',
  output: { path: process.env.OUT_DIR || path.join(__dirname, 'dist-webpack'), filename: 'main.js', clean: true },
};
